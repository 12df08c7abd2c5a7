"""The concept suite (recipes/suite/concepts.yaml) on the default model: each concept given as
its one sentence, as a user would, and judged again by its rule (gcm_edit/judges/rules*.py).

    .venv/bin/python bench/concepts.py [--only french,pirate] [--export] [--n-heldout N]

Without --export (a few minutes a concept): the learned judge's fit on the training questions,
and the base and prompted models' held-out answers judged by the rule and by the learned
judge. Columns: the prompted and base success by the rule (rule ∧ fluent ∧ relevant), of
the prompted answers the rule accepts the share the fluency and relevance checks reject, the
learned judge's out-of-fold AUC, and its precision and recall against the rule over those
answers, then pooled over the suite. With --export, each concept's default export too: the
edit's success by the rule, KL per token and facts (an export of a concept the model does not
follow stops in one line, reported as such). Writes bench/results/concepts.csv.
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
CUTS = [0.5, 0.7, 0.9, 0.95, 0.99]  # the learned judge's cut (0.5) and stricter ones


def judged(run, judge, questions: list[str], texts: list[str]) -> list[dict]:
    """Per answer: the rule's verdict, fluency, relevance and success (rule ∧ fluent ∧
    relevant as the recipe asks) and the learned judge's probability (its verdict: > 0.5)."""
    rows = run.judged(questions, texts).answers
    needs = run.recipe.require_relevance
    out = []
    for text, r in zip(texts, rows, strict=True):
        rule = judge(text)
        success = rule and r["fluent"] and (r["relevant"] or not needs)
        out.append(r | {"rule": rule, "p": run.judge.grade(text), "success": success})
    return out


def failed_checks(rows: list[dict]) -> dict:
    """Of the answers the rule accepts, the share the fluency and relevance checks reject:
    where these concept-independent judges punish the concept itself."""
    kept = [r for r in rows if r["rule"]]
    if not kept:
        return {}
    return {
        "not fluent": sum(not r["fluent"] for r in kept) / len(kept),
        "not relevant": sum(not r["relevant"] for r in kept) / len(kept),
    }


def concept_row(concept, n_heldout: int, export_to: Path | None) -> dict:
    """One concept's figures; a concept the model does not follow (the learned judge's AUC
    below the threshold) keeps its AUC and the rule's rate on the prompted answers only."""
    from gcm_edit.commands.export import export
    from gcm_edit.commands.export_settings import ExportSettings
    from gcm_edit.commands.learned_judge import fitted_judge
    from gcm_edit.commands.steering_run import SteeringRun
    from gcm_edit.errors import GcmEditError
    from gcm_edit.judges import make_judge
    from gcm_edit.steering.plan import SteeringPlan

    settings = ExportSettings(concept=concept.sentence, n_heldout=n_heldout)
    run = SteeringRun(settings)
    rule = make_judge(concept.judge)
    questions = run.recipe.heldout[:n_heldout]
    answers = {
        "base": run.answers("held-out answers (base)", questions, None),
        "prompted": run.answers(
            "held-out answers (prompted)", questions, None, directive=run.recipe.directive
        ),
    }
    prompted_rule = sum(map(rule, answers["prompted"])) / len(questions)
    row = {"concept": concept.name, "rule": concept.judge, "prompted, rule alone": prompted_rule}
    row |= {"auc": fitted_judge(run).trust.cv_auc, "agree": []}
    try:
        run.judge_fit  # noqa: B018 (raises when the model does not follow the sentence)
        if export_to is not None:
            out = export_to / concept.name
            export(settings.model_copy(update={"out": out, "force": True}))
            manifest = json.loads((out / "gcm_edit.json").read_text())
            facts = manifest["capability"]["steered"]
            row |= {"kl": manifest["retention"]["kl"], "facts": f"{facts['k']}/{facts['n']}"}
            plan = SteeringPlan.load(out)
            answers["edit"] = run.answers("held-out answers (steered)", questions, plan)
    except GcmEditError as err:
        row["stopped"] = str(err)
        return row
    for name, texts in answers.items():
        rows = judged(run, rule, questions, texts)
        row[name] = sum(r["success"] for r in rows) / len(rows)
        if name == "prompted":
            row |= failed_checks(rows)
        if name in ("base", "prompted"):
            row["agree"] += [(r["rule"], r["p"]) for r in rows]
    return row


def precision_recall(pairs: list[tuple[bool, float]], cut: float = 0.5) -> tuple[float, float]:
    """Of the learned judge (concept when P > `cut`) against the rule: (rule ∧ learned) /
    learned, / rule."""
    both = sum(rule and p > cut for rule, p in pairs)
    said = sum(p > cut for _, p in pairs)
    true = sum(rule for rule, _ in pairs)
    return both / said if said else float("nan"), both / true if true else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=None, help="comma-separated concept names")
    parser.add_argument("--export", action="store_true", help="also export each concept")
    parser.add_argument("--n-heldout", type=int, default=64)
    args = parser.parse_args()

    from gcm_edit.console import quiet_libraries
    from gcm_edit.inputs.suite import suite_concepts
    from gcm_edit.tables import Column, ResultTable, print_tables

    quiet_libraries()
    concepts = suite_concepts()
    if args.only:
        wanted = args.only.split(",")
        unknown = sorted(set(wanted) - {c.name for c in concepts})
        if unknown:
            names = ", ".join(c.name for c in concepts)
            parser.error(f"unknown concept {unknown[0]!r}; the suite: {names}")
        concepts = [c for c in concepts if c.name in wanted]
    with tempfile.TemporaryDirectory(prefix="gcm-concepts-") as tmp:
        folder = Path(tmp) if args.export else None
        rows = [concept_row(c, args.n_heldout, folder) for c in concepts]
    for row in rows:
        row["precision"], row["recall"] = precision_recall(row["agree"])
    pairs = [pair for row in rows for pair in row["agree"]]
    pooled = precision_recall(pairs)
    rows.append({"concept": "pooled", "rule": "", "precision": pooled[0], "recall": pooled[1]})

    def figure(key: str, fmt: str):
        return lambda r: "-" if r.get(key) is None else format(r[key], fmt)

    exported = [
        Column("edit", figure("edit", ".0%")),
        Column("KL", figure("kl", ".3f")),
        Column("facts", figure("facts", "")),
    ]
    columns = [
        Column("concept", lambda r: r["concept"]),
        Column("rule", lambda r: r["rule"]),
        Column("prompted, rule alone", figure("prompted, rule alone", ".0%")),
        Column("prompted", figure("prompted", ".0%")),
        Column("rule, not fluent", figure("not fluent", ".0%")),
        Column("rule, not relevant", figure("not relevant", ".0%")),
        Column("base", figure("base", ".0%")),
        *(exported if args.export else []),
        Column("judge AUC", figure("auc", ".2f")),
        Column("precision", figure("precision", ".2f")),
        Column("recall", figure("recall", ".2f")),
    ]
    title = f"Concept suite: {args.n_heldout} held-out questions, success by the rule"
    table = ResultTable(title, columns, rows)
    RESULTS.mkdir(exist_ok=True)
    with open(RESULTS / "concepts.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=sorted({k for r in rows for k in r} - {"agree"}))
        writer.writeheader()
        writer.writerows({k: v for k, v in r.items() if k != "agree"} for r in rows)
    cuts = ResultTable(
        "The learned judge against the rules, pooled, by the probability it calls concept",
        [
            Column("P >", lambda c: f"{c:g}"),
            Column("precision", lambda c: format(precision_recall(pairs, c)[0], ".2f")),
            Column("recall", lambda c: format(precision_recall(pairs, c)[1], ".2f")),
        ],
        CUTS,
    )
    print_tables(table, cuts)
    print(table.markdown())
    print(cuts.markdown())
    for row in rows:
        if row.get("stopped"):
            print(f"{row['concept']}: {row['stopped']}")


if __name__ == "__main__":
    main()
