"""Greedy answers at two generation batches, set by set: is `--generation-batch 128` the same
model output as 32? (A batch pads its rows; a near-tie can flip with the float order.)

    .venv/bin/python bench/generation_batch.py [--batches 32,128] [--exports DIR ...]

Every answer set a default export judges: held-out (base, prompted, mean-difference, each
export's edit), other forms, factual questions. Answers come from the run cache when an export
at that batch made them (`bench/distill.py --seeds 3` at each), else they are generated here.
Prints the share of answers whose text is identical to the first batch's.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

DEFAULT_EXPORTS = sorted(
    (Path(__file__).resolve().parent / "results" / "distill").glob("distilled_vectors___maps-seed*")
)


def answer_sets(run, exports: list[Path]) -> dict[str, list[str]]:
    """{set name: answers} for one run (one generation batch)."""
    from gcm_edit.commands.export_settings import ExportSettings
    from gcm_edit.evaluation.capability import FACTUAL_DECODING
    from gcm_edit.inputs.factual import factual_items
    from gcm_edit.steering.plan import SteeringPlan

    recipe, s = run.recipe, run.settings
    heldout, forms = recipe.heldout[: s.n_heldout], recipe.heldout_forms[: s.n_heldout]
    md = ExportSettings(edit="mean-diff", generation_batch=s.generation_batch)
    start = run.plan(md.positions, md.alpha, md.k_percent, md.method, md.edit.intervention)
    facts = [item.question for item in factual_items()]
    factual = replace(FACTUAL_DECODING, stop=run.decoding.stop)
    sets = {
        "held-out, base": run.answers("held-out answers (base)", heldout, None),
        "held-out, prompted": run.answers(
            "held-out answers (prompted)", heldout, None, directive=recipe.directive
        ),
        "held-out, mean-diff": run.answers("held-out answers (mean-diff)", heldout, start),
        "other forms, prompted": run.answers(
            "other forms: held-out answers (prompted)", forms, None, directive=recipe.directive
        ),
        "facts, base": run.answers("factual answers (base)", facts, None, factual),
        "facts, prompted": run.answers(
            "factual answers (prompted)", facts, None, factual, recipe.directive
        ),
    }
    for folder in exports:
        plan = SteeringPlan.load(folder)
        sets[f"held-out, {folder.name}"] = run.answers("held-out answers (steered)", heldout, plan)
        sets[f"other forms, {folder.name}"] = run.answers(
            "other forms: held-out answers (steered)", forms, plan
        )
        sets[f"facts, {folder.name}"] = run.answers(
            "factual answers (steered)", facts, plan, factual
        )
    return sets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", default="32,128")
    parser.add_argument("--exports", nargs="*", type=Path, default=DEFAULT_EXPORTS)
    args = parser.parse_args()

    from gcm_edit.commands.export_settings import ExportSettings
    from gcm_edit.commands.steering_run import SteeringRun
    from gcm_edit.console import quiet_libraries
    from gcm_edit.tables import Column, ResultTable, print_tables

    quiet_libraries()
    first, *others = [int(b) for b in args.batches.split(",")]
    sets = {
        b: answer_sets(SteeringRun(ExportSettings(generation_batch=b)), args.exports)
        for b in (first, *others)
    }
    rows = [
        {"set": name, "n": len(answers)}
        | {b: sum(x == y for x, y in zip(answers, sets[b][name], strict=True)) for b in others}
        for name, answers in sets[first].items()
    ]
    total = {"set": "all", "n": sum(r["n"] for r in rows)}
    rows.append(total | {b: sum(r[b] for r in rows) for b in others})
    columns = [
        Column("answer set", lambda r: r["set"]),
        Column("answers", lambda r: r["n"]),
        *(
            Column(f"identical at {b}", lambda r, b=b: f"{r[b]} ({r[b] / r['n']:.1%})")
            for b in others
        ),
    ]
    table = ResultTable(f"Greedy answers against --generation-batch {first}", columns, rows)
    print_tables(table)
    print(table.markdown())


if __name__ == "__main__":
    main()
