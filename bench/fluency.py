"""How far the fluency judge agrees with readers: precision and recall of "fluent" on the
labelled steered answers in tests/evaluation/fluency_labels.jsonl, for the judge as it is
and as it was before the reader-labelled checks (LEGACY_LIMITS), per concept and plan.

    .venv/bin/python bench/fluency.py

No model runs: each label carries the answer's perplexity under the base model.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import yaml

from gcm_edit.evaluation.fluency import LEGACY_LIMITS, fluency_figures, passes
from gcm_edit.inputs.recipe_files import load_recipe
from gcm_edit.tables import Column, ResultTable, print_tables

LABELS = Path(__file__).resolve().parents[1] / "tests" / "evaluation" / "fluency_labels.jsonl"


def load_labels() -> list[dict]:
    return [json.loads(line) for line in LABELS.read_text().splitlines() if line.strip()]


def verdicts(labels: list[dict], legacy: bool = False) -> list[bool]:
    """The judge's "fluent" for each labelled answer, with its recipe's limits."""
    limits = {c: load_recipe(c).fluency for c in {row["concept"] for row in labels}}
    if legacy:
        limits = {c: f.model_copy(update=LEGACY_LIMITS) for c, f in limits.items()}
    return [
        passes(
            fluency_figures(row["answer"], row["perplexity"], limits[row["concept"]]),
            limits[row["concept"]],
        )
        for row in labels
    ]


def judged_as_before(concept: str, folder: Path) -> str:
    """A copy of `concept`'s recipe in `folder` (its data files read in) that judges fluency
    as before the reader-labelled checks (LEGACY_LIMITS): its path, for --concept. Nothing
    the run cache keys on changes, so answers and judged figures come from the cache."""
    recipe = load_recipe(concept)
    data = json.loads(recipe.model_dump_json(exclude_defaults=True))
    data["fluency"] = recipe.fluency.model_copy(update=LEGACY_LIMITS).model_dump()
    path = folder / f"{recipe.name}-judged-as-before.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return str(path)


def agreement(labels: list[dict], judged: list[bool]) -> dict:
    """Precision and recall of the judge's "fluent" against the readers' labels."""
    tp = sum(j and row["fluent"] for j, row in zip(judged, labels, strict=True))
    said = sum(judged)
    fluent = sum(row["fluent"] for row in labels)
    return {
        "n": len(labels),
        "readers: fluent": fluent,
        "judge: fluent": said,
        "precision": tp / said if said else float("nan"),
        "recall": tp / fluent if fluent else float("nan"),
    }


def main() -> None:
    labels = load_labels()
    groups: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(labels):
        groups["all"].append(i)
        if "set" in row:  # a later labelling round, also reported on its own
            groups[f"{row['set']} ({row['concept']}, every plan)"].append(i)
        groups[f"{row['concept']}, {row['plan']}"].append(i)
    rows = []
    for judge, legacy in (("before", True), ("now", False)):
        judged = verdicts(labels, legacy)
        for group, members in groups.items():
            subset = [labels[i] for i in members]
            rows.append(
                {
                    "judge": judge,
                    "answers": group,
                    **agreement(subset, [judged[i] for i in members]),
                }
            )
    columns = [
        Column("judge", lambda r: r["judge"]),
        Column("answers", lambda r: r["answers"]),
        Column("n", lambda r: r["n"]),
        Column("readers: fluent", lambda r: r["readers: fluent"]),
        Column("judge: fluent", lambda r: r["judge: fluent"]),
        Column("precision", lambda r: r["precision"], ".2f"),
        Column("recall", lambda r: r["recall"], ".2f"),
    ]
    table = ResultTable("Fluency judge against readers' labels", columns, rows)
    print_tables(table)
    print(table.markdown())


if __name__ == "__main__":
    main()
