"""Where causal selection pays: held-out success of the default (distilled) edit against the
number of heads it may use, for GCM's ranking (attribution patching), random heads, the probe
ranking and attribution on the distillation loss itself (`--method distillation`), on both
held-out splits.

    .venv/bin/python bench/sparsity.py [--heads 1,2,4,8,14,27] [--methods attribution,random,...]
        [--seeds 0] [--concept verse] [--wider-validation]

Each point is a `gcm-edit export --k K --method M --seed S` (bench/distill.py's, its command
printed), so a seed's teacher answers are computed once and shared by every point of that seed:
GCM and random heads at one seed learn from the same teacher set, and random heads at another
seed are another draw (with their own teacher samples). About 10 minutes a point on 2 CPU cores.
Prints success per head count and the fewest heads at which each ranking reaches the prompted
model, then writes bench/results/sparsity.csv. `--wider-validation` also judges each point on 192
questions no point sees (`wider_validation`) and names the k each ranking would choose on
validation: the recipe's 64 questions are too few to separate 8 heads from 14.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from distill import DISTILLED, RESULTS, export_variant, forms_pool, options, rate, write_csv
from fluency import judged_as_before

from gcm_edit.inputs.recipe_files import load_recipe
from gcm_edit.tables import Column, ResultTable, print_tables


def k_for(heads: int, total: int) -> str:
    """--k that selects exactly `heads` of `total` (steering/plan.py rounds k% of total up)."""
    return repr(100 * heads / total)


def reaches(points: list[dict], field: str, prompted: str) -> str:
    """The fewest heads at which every seed's success is at least the prompted model's."""
    by_heads: dict[int, list[dict]] = {}
    for p in points:
        by_heads.setdefault(p["n"], []).append(p)
    for n in sorted(by_heads):
        rows = by_heads[n]
        if all(r[field] and r[prompted] and r[field]["k"] >= r[prompted]["k"] for r in rows):
            return str(n)
    return "never"


def wider_validation(concept: str) -> dict[str, list[str]]:
    """128 + 64 questions that no point learns from or is judged on, to choose k on more than
    the recipe's 64 validation questions: the distillation pool after the 128 a point's teacher
    answers, and the first 64 of the other-forms pool (recipes/data/distill-forms.jsonl)."""
    pool = load_recipe(concept).distill_questions()[128:256]
    return {"wider validation": pool + forms_pool()[:64]}


def chosen(points: list[dict], method: str) -> str:
    """The head count with the most successes on validation and wider validation together,
    summed over seeds (ties: fewer heads)."""
    total: dict[int, int] = {}
    for p in points:
        if p["method"] == method:
            kept = (p["validation kept"] or 0) + p["success (wider validation)"]["k"]
            total[p["n"]] = total.get(p["n"], 0) + kept
    return str(max(sorted(total), key=lambda n: total[n]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concept", default="verse")
    parser.add_argument("--heads", default="1,2,4,8,14,27")
    parser.add_argument("--methods", default="attribution,random,probe,distillation")
    parser.add_argument("--seeds", default="0", help="comma-separated")
    parser.add_argument(
        "--wider-validation",
        action="store_true",
        help="also judge each point on 192 more validation questions and choose k on them",
    )
    args = parser.parse_args()

    from gcm_edit.commands.export_settings import ExportSettings
    from gcm_edit.commands.steering_run import SteeringRun
    from gcm_edit.console import quiet_libraries

    quiet_libraries()
    common = ["--concept", args.concept]
    total = SteeringRun(ExportSettings(**options(common))).geometry.n_total
    heads = [int(n) for n in args.heads.split(",")]
    methods, seeds = args.methods.split(","), [int(s) for s in args.seeds.split(",")]
    points = []
    with tempfile.TemporaryDirectory(prefix="gcm-sparsity-") as tmp:
        legacy = judged_as_before(args.concept, Path(tmp))
        wider = wider_validation(args.concept) if args.wider_validation else None
        for method in methods:
            for seed in seeds:
                for n in heads:
                    extra = [*DISTILLED, "--method", method, "--k", k_for(n, total)]
                    name = f"{method}, {n} heads"
                    row = export_variant(
                        name, extra, common, RESULTS / "sparsity", legacy, seed, wider
                    )
                    points.append({**row, "method": method, "n": n})
    write_csv(RESULTS / "sparsity.csv", points)
    columns = [
        Column("ranking", lambda p: p["method"]),
        Column("seed", lambda p: p["seed"]),
        Column("heads", lambda p: p["n"]),
        Column("success", lambda p: rate(p["success"])),
        Column("prompted", lambda p: rate(p["prompted success"])),
        Column("other forms", lambda p: rate(p["success (forms)"])),
        Column("prompted, other forms", lambda p: rate(p["prompted (forms)"])),
        Column("KL/token", lambda p: p["kl"], ".3f"),
        Column("validation kept", lambda p: p["validation kept"]),
    ]
    if args.wider_validation:
        columns += [
            Column("wider validation", lambda p: rate(p["success (wider validation)"])),
            Column("prompted, wider", lambda p: rate(p["prompted (wider validation)"])),
        ]
    summary = [
        {
            "method": m,
            "held-out": reaches(
                [p for p in points if p["method"] == m], "success", "prompted success"
            ),
            "forms": reaches(
                [p for p in points if p["method"] == m], "success (forms)", "prompted (forms)"
            ),
            "chosen": chosen(points, m) if args.wider_validation else "-",
        }
        for m in methods
    ]
    tables = [
        ResultTable(f"{args.concept}: success against heads, held-out", columns, points),
        ResultTable(
            "fewest heads at which every seed reaches the prompted model",
            [
                Column("ranking", lambda r: r["method"]),
                Column("held-out", lambda r: r["held-out"]),
                Column("other forms", lambda r: r["forms"]),
                Column("k chosen on validation + wider", lambda r: r["chosen"]),
            ],
            summary,
        ),
    ]
    print_tables(*tables)
    for table in tables:
        print(table.markdown())


if __name__ == "__main__":
    main()
