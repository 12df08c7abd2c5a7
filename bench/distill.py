"""Distilled edits side by side on held-out questions (docs/results.md): the paper's
mean-difference δ (additive, rank-1, and chosen by `--kl-budget 0.5`), distilled vectors, distilled
vectors + maps, GCM vs random vs all heads learned the same way, KL targets 0.1-1, the teacher-set
curve (the first 32-365 distillation questions, with each edit's teacher set, validation and
cost), and the residual-stream CAA baseline (`--edit caa`: one layer's mean difference, chosen on
validation).

    .venv/bin/python bench/distill.py [--concept verse] [--model M] [--only a,b] [--n-heldout N]
        [--seeds N]

Each variant is a `gcm-edit export` (its command is printed), so every stage is cached and a
re-run measures only what is new; cold, about 10 minutes a variant on 2 CPU cores. With
`--seeds N` each variant runs as `--seed 0` … `--seed N-1` (teacher samples, batch order,
neutral draws, map initialisation) and a second table gives each variant's mean and range.
Every row is reported on both held-out splits: `heldout` and, where the recipe has one,
`heldout_forms` (other question forms). Prints the tables (the prompting reference measured in
the same run) and writes bench/results/distill.csv.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import yaml
from fluency import judged_as_before
from seed_spread import record, spread_table

from gcm_edit.evaluation.rates import Rate
from gcm_edit.inputs.recipe_files import load_recipe
from gcm_edit.tables import Column, ResultTable, print_tables

DISTILLED = ["--edit", "distilled"]
FORMS_POOL = Path(__file__).resolve().parents[1] / "recipes" / "data" / "distill-forms.jsonl"


def forms_pool() -> list[str]:
    """The 128 other-form questions no recipe split holds (recipes/data/distill-forms.jsonl)."""
    return [json.loads(line)["question"] for line in FORMS_POOL.read_text().splitlines()]


def wider_teacher(concept: str, folder: Path) -> list[str]:
    """The default edit taught on the recipe's first 128 distillation questions plus 128 of
    other forms (recipes/data/distill-forms.jsonl: opinions, feelings, descriptions,
    requests, comparisons, advice, short and long), through a copy of the recipe in
    `folder`."""
    recipe = load_recipe(concept)
    forms = forms_pool()
    data = json.loads(recipe.model_dump_json(exclude_defaults=True))
    data["distill"] = recipe.distill_questions()[:128] + forms[:128]
    path = folder / f"{recipe.name}-wider-teacher.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return [*DISTILLED, "--concept", str(path), "--distill-questions", str(len(data["distill"]))]


# a variant: its export options, or a function of (concept, scratch folder) giving them
VARIANTS: dict[str, list[str] | Callable[[str, Path], list[str]]] = {
    "distilled + on-policy": [*DISTILLED, "--edit-on-policy-steps", "40"],
    "mean-diff δ (paper)": ["--edit", "mean-diff"],
    "mean-diff δ rank-1": ["--edit", "mean-diff", "--intervention", "rank1"],
    "mean-diff δ KL budget 0.5": ["--edit", "mean-diff", "--kl-budget", "0.5"],
    "mean-diff δ learned scales": [
        "--edit",
        "scales",
        "--rank-by",
        "effect-per-kl",
        "--k",
        "10",
    ],
    "distilled vectors": [*DISTILLED, "--edit-rank", "0"],
    "distilled vectors + maps": DISTILLED,
    "random heads (distilled)": [*DISTILLED, "--method", "random"],
    "all heads (distilled)": [*DISTILLED, "--k", "100"],
    # KL held on the base model's own continuations of the neutral prompts too
    "distilled + KL on continuations": [*DISTILLED, "--kl-continuations"],
    "all heads + KL on continuations": [*DISTILLED, "--k", "100", "--kl-continuations"],
    # gated neurons on the heads' median layer; 4 neurons (3·576 each) ≈ the rank-4 maps of
    # 14 heads (2·4·64 each, the default's k when measured) in parameters
    # the start plan's own judged answers learned too (one-hot): for sycophancy, where the
    # prompted model critiques 3% of poems and the mean-difference plan 39%
    "distilled + steered answers": [*DISTILLED, "--teacher-steered"],
    # then 40 steps on the student's own judged answers with the teacher's
    "distilled + self-training": [*DISTILLED, "--edit-self-steps", "40"],
    "distilled vectors + 4 neurons": [*DISTILLED, "--edit-rank", "0", "--edit-neurons", "4"],
    "distilled vectors + maps + 4 neurons": [*DISTILLED, "--edit-neurons", "4"],
    "distilled KL 0.1": [*DISTILLED, "--kl-budget", "0.1"],
    "distilled KL 0.25": [*DISTILLED, "--kl-budget", "0.25"],
    "distilled KL 1": [*DISTILLED, "--kl-budget", "1"],
    # early, middle, late of 30 layers (the GCM heads sit in layers 8-21)
    "CAA (one residual layer)": ["--edit", "caa", "--caa-layers", "8,14,20", "--alphas", "2,4"],
    "teacher + other forms (256 q)": wider_teacher,
    # the teacher-set curve: the default on the first N of the recipe's distillation questions
    **{f"teacher {n} q": [*DISTILLED, "--distill-questions", str(n)] for n in (32, 64, 256, 365)},
}
RESULTS = Path(__file__).resolve().parent / "results"


def row(name: str, seed: int, heads: int, manifest: dict, legacy: dict, forms: dict) -> dict:
    """One table row from an export's JSON figures; `legacy`: success of the steered and the
    prompted answers under the fluency judge before the reader labels; `forms`: their success
    on the recipe's second held-out split (empty without one)."""
    metrics, retention, capability = (manifest[k] for k in ("metrics", "retention", "capability"))
    return {
        "variant": name,
        "seed": seed,
        "heads": heads,
        "success (old judge)": legacy["steered"],
        "prompted (old judge)": legacy.get("prompted"),
        **{k: metrics["steered"][k] for k in ("success", "concept", "fluent", "relevant")},
        "prompted success": metrics.get("prompted", {}).get("success"),
        "kl": retention["kl"],
        "ppl ratio": retention["neutral_ppl_steered"] / retention["neutral_ppl_base"],
        "facts": capability["steered"],
        "facts prompted": capability.get("prompted"),
        "facts base": capability["base"],
        "success (forms)": forms.get("steered"),
        "prompted (forms)": forms.get("prompted"),
        **edit_cost(manifest),
    }


def edit_cost(manifest: dict) -> dict:
    """A learned edit's teacher set, its kept snapshot's validation and the seconds of its
    two own stages (0 where cached), for the teacher-set curve."""
    edit, timings = manifest.get("edit") or {}, manifest["timings_s"]
    kept = [
        v
        for v in edit.get("validation", [])
        if v["method"].endswith(f"step {edit.get('chosen_step')}")
    ]
    return {
        "teacher answers": edit.get("teacher_answers"),
        "validation kept": kept[0]["success"]["k"] if kept else None,
        "teacher + edit s": timings.get("teacher answers", 0) + timings.get("distilled edit", 0),
    }


def export_variant(
    name: str,
    args: list[str],
    common: list[str],
    folder: Path,
    legacy: str,
    seed: int,
    extra: dict[str, list[str]] | None = None,
) -> dict:
    """Export one variant with `--seed seed`; `legacy`: the recipe judged as before the reader
    labels; `extra`: more question sets to report success on, by name."""
    from gcm_edit.commands.export import export
    from gcm_edit.commands.export_manifest import export_spread_key
    from gcm_edit.commands.export_settings import ExportSettings
    from gcm_edit.commands.steering_run import SteeringRun
    from gcm_edit.steering.plan import SteeringPlan

    out = folder / "".join(c if c.isalnum() or c in ".-" else "_" for c in f"{name}-seed{seed}")
    argv = ["--out", str(out), "--force", "--seed", str(seed), *common, *args]
    print(f"\n$ gcm-edit export {' '.join(argv)}")
    settings = ExportSettings(**options(argv))
    export(settings)
    manifest = json.loads((out / "gcm_edit.json").read_text())
    heads = len({(h["layer"], h["head"]) for h in manifest["steering"]["heads"]})
    plan = SteeringPlan.load(out)
    judged_before = SteeringRun(ExportSettings(**{**options(argv), "concept": legacy}))
    success = split_success(judged_before, plan, judged_before.recipe.heldout)
    run = SteeringRun(settings)
    forms = run.recipe.heldout_forms
    other = split_success(run, plan, forms, "other forms: ") if forms else {}
    more = {}
    for label, questions in (extra or {}).items():
        figures = split_success(run, plan, questions, f"{label}: ")
        more |= {
            f"success ({label})": figures["steered"],
            f"prompted ({label})": figures.get("prompted"),
        }
    return (
        row(name, seed, heads, manifest, success, other)
        | more
        | {"spread key": export_spread_key(run, settings)}
    )


def split_success(run, plan, questions: list[str], label: str = "") -> dict:
    """Success of `plan` and of the prompting reference on `questions` (the first
    --n-heldout), judged by `run`'s recipe; answers and figures are cached stages."""
    questions = questions[: run.settings.n_heldout]
    texts = {"steered": run.answers(f"{label}held-out answers (steered)", questions, plan)}
    if run.recipe.directive is not None:
        texts["prompted"] = run.answers(
            f"{label}held-out answers (prompted)", questions, None, directive=run.recipe.directive
        )
    return {k: run.judged(questions, t).success.model_dump() for k, t in texts.items()}


def write_csv(path: Path, rows: list[dict]) -> None:
    """One line per row; rates and other nested figures as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(
            {k: json.dumps(v) if isinstance(v, dict) else v for k, v in r.items()} for r in rows
        )


def args_of(variant, concept: str, scratch: str) -> list[str]:
    """A variant's export options (a function of the concept is called here)."""
    return variant(concept, Path(scratch)) if callable(variant) else variant


def options(argv: list[str]) -> dict:
    """`--flag value` pairs (and bare switches such as `--force`) as ExportSettings fields."""
    out, i = {}, 0
    while i < len(argv):
        key = argv[i].removeprefix("--").replace("-", "_")
        key = {"k": "k_percent"}.get(key, key)
        if i + 1 == len(argv) or argv[i + 1].startswith("--"):
            out[key], i = True, i + 1
        else:  # a comma-separated value is a list option's items
            value = argv[i + 1]
            out[key], i = (value.split(",") if "," in value else value), i + 2
    return out


def rate(value: dict | None) -> str:
    return "-" if value is None else str(Rate(**value))


def count(value: dict | None) -> str:
    return "-" if value is None else f"{value['k']}/{value['n']}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concept", default="verse")
    parser.add_argument("--model", default=None)
    parser.add_argument("--only", default=None, help="comma-separated variant names")
    parser.add_argument("--n-heldout", type=int, default=None)
    parser.add_argument("--seeds", type=int, default=1, help="run each variant over seeds 0..N-1")
    parser.add_argument(
        "--record",
        action="store_true",
        help="record each variant's spread over seeds for its exports' cards",
    )
    args = parser.parse_args()

    from gcm_edit.console import quiet_libraries

    quiet_libraries()
    common = ["--concept", args.concept]
    common += ["--model", args.model] if args.model else []
    common += ["--n-heldout", str(args.n_heldout)] if args.n_heldout else []
    wanted = args.only.split(",") if args.only else list(VARIANTS)
    unknown = [name for name in wanted if name not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant {unknown[0]!r}; variants: {', '.join(VARIANTS)}")
    folder = RESULTS / "distill" / (Path(args.model).stem if args.model else "")
    with tempfile.TemporaryDirectory(prefix="gcm-distill-") as tmp:
        legacy = judged_as_before(args.concept, Path(tmp))
        argv = {name: args_of(VARIANTS[name], args.concept, tmp) for name in wanted}
        rows = [
            export_variant(name, argv[name], common, folder, legacy, seed)
            for name in wanted
            for seed in range(args.seeds)
        ]
    write_csv(RESULTS / "distill.csv", rows)
    columns = [
        Column("variant", lambda r: r["variant"]),
        Column("seed", lambda r: r["seed"]),
        Column("heads", lambda r: r["heads"]),
        *(Column(k, lambda r, k=k: rate(r[k])) for k in ("success", "concept", "fluent")),
        Column("relevant", lambda r: rate(r["relevant"])),
        Column("prompted", lambda r: rate(r["prompted success"])),
        Column("success, other forms", lambda r: rate(r["success (forms)"])),
        Column("prompted, other forms", lambda r: rate(r["prompted (forms)"])),
        Column("success, old judge", lambda r: rate(r["success (old judge)"])),
        Column("prompted, old judge", lambda r: rate(r["prompted (old judge)"])),
        Column("KL/token", lambda r: r["kl"], ".3f"),
        Column("ppl ×", lambda r: r["ppl ratio"], ".2f"),
        Column("facts", lambda r: count(r["facts"])),
        Column("prompted facts", lambda r: count(r["facts prompted"])),
        Column("base facts", lambda r: count(r["facts base"])),
        Column("teacher answers", lambda r: r["teacher answers"] or "-"),
        Column(
            "validation kept",
            lambda r: "-" if r["validation kept"] is None else r["validation kept"],
        ),
        Column("teacher + edit (s)", lambda r: r["teacher + edit s"], ".0f"),
    ]
    tables = [ResultTable(f"{args.concept}: held-out, no directive", columns, rows)]
    if args.seeds > 1:
        tables.append(spread_table(args.concept, rows))
    if args.record and args.seeds > 1:
        record(rows, sys.argv[1:])
    print_tables(*tables)
    for table in tables:
        print(table.markdown())


if __name__ == "__main__":
    main()
