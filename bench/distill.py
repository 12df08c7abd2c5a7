"""Distilled edits side by side on held-out questions (docs/results.md): the paper's
mean-difference δ (additive, rank-1, and chosen by `--kl-budget 0.5`), distilled vectors, distilled
vectors + maps, GCM vs random vs all heads learned the same way, KL targets 0.1-1, and the
residual-stream CAA baseline (`--edit caa`: one layer's mean difference, chosen on validation).

    .venv/bin/python bench/distill.py [--concept verse] [--model M] [--only a,b] [--n-heldout N]

Each variant is a `gcm-edit export` (its command is printed), so every stage is cached and a
re-run measures only what is new; cold, about 10 minutes a variant on 2 CPU cores. Prints one
table (the prompting reference measured in the same run) and writes bench/results/distill.csv.
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
from pathlib import Path

from fluency import judged_as_before

from gcm_edit.evaluation.rates import Rate
from gcm_edit.tables import Column, ResultTable, print_tables

DISTILLED = ["--edit", "distilled"]
VARIANTS: dict[str, list[str]] = {
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
    "distilled KL 0.1": [*DISTILLED, "--kl-budget", "0.1"],
    "distilled KL 0.25": [*DISTILLED, "--kl-budget", "0.25"],
    "distilled KL 1": [*DISTILLED, "--kl-budget", "1"],
    # early, middle, late of 30 layers (the GCM heads sit in layers 8-21)
    "CAA (one residual layer)": ["--edit", "caa", "--caa-layers", "8,14,20", "--alphas", "2,4"],
}
RESULTS = Path(__file__).resolve().parent / "results"


def row(
    name: str, heads: int, metrics: dict, retention: dict, capability: dict, legacy: dict
) -> dict:
    """One table row from an export's JSON figures; `legacy`: success of
    the steered and the prompted answers under the fluency judge before the reader labels."""
    return {
        "variant": name,
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
    }


def export_variant(
    name: str, args: list[str], common: list[str], folder: Path, legacy: str
) -> dict:
    """Export one variant; `legacy`: the recipe judged as before the reader labels."""
    from gcm_edit.commands.export import export
    from gcm_edit.commands.export_settings import ExportSettings
    from gcm_edit.commands.steering_run import SteeringRun
    from gcm_edit.steering.plan import SteeringPlan

    out = folder / "".join(c if c.isalnum() or c in ".-" else "_" for c in name)
    argv = ["--out", str(out), "--force", *common, *args]
    print(f"\n$ gcm-edit export {' '.join(argv)}")
    settings = ExportSettings(**options(argv))
    export(settings)
    manifest = json.loads((out / "gcm_edit.json").read_text())
    heads = len({(h["layer"], h["head"]) for h in manifest["steering"]["heads"]})
    judged_before = SteeringRun(ExportSettings(**{**options(argv), "concept": legacy}))
    success = legacy_success(judged_before, SteeringPlan.load(out))
    return row(
        name, heads, manifest["metrics"], manifest["retention"], manifest["capability"], success
    )


def legacy_success(run, plan) -> dict:
    """Held-out success of `plan` and of the prompting reference, judged by `run` (on the
    recipe judged as before the reader-labelled checks; answers and figures come from the
    cache)."""
    questions = run.recipe.heldout[: run.settings.n_heldout]
    texts = {"steered": run.answers("held-out answers (steered)", questions, plan)}
    if run.recipe.directive is not None:
        texts["prompted"] = run.answers(
            "held-out answers (prompted)", questions, None, directive=run.recipe.directive
        )
    return {k: run.judged(questions, t).success.model_dump() for k, t in texts.items()}


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
    args = parser.parse_args()

    from gcm_edit.console import quiet_libraries

    quiet_libraries()
    common = ["--concept", args.concept]
    common += ["--model", args.model] if args.model else []
    common += ["--n-heldout", str(args.n_heldout)] if args.n_heldout else []
    wanted = args.only.split(",") if args.only else list(VARIANTS)
    folder = RESULTS / "distill" / (Path(args.model).stem if args.model else "")
    with tempfile.TemporaryDirectory(prefix="gcm-distill-") as tmp:
        legacy = judged_as_before(args.concept, Path(tmp))
        rows = [export_variant(name, VARIANTS[name], common, folder, legacy) for name in wanted]
    RESULTS.mkdir(exist_ok=True)
    with open(RESULTS / "distill.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(
            {k: json.dumps(v) if isinstance(v, dict) else v for k, v in r.items()} for r in rows
        )
    columns = [
        Column("variant", lambda r: r["variant"]),
        Column("heads", lambda r: r["heads"]),
        *(Column(k, lambda r, k=k: rate(r[k])) for k in ("success", "concept", "fluent")),
        Column("relevant", lambda r: rate(r["relevant"])),
        Column("prompted", lambda r: rate(r["prompted success"])),
        Column("success, old judge", lambda r: rate(r["success (old judge)"])),
        Column("prompted, old judge", lambda r: rate(r["prompted (old judge)"])),
        Column("KL/token", lambda r: r["kl"], ".3f"),
        Column("ppl ×", lambda r: r["ppl ratio"], ".2f"),
        Column("facts", lambda r: count(r["facts"])),
        Column("prompted facts", lambda r: count(r["facts prompted"])),
        Column("base facts", lambda r: count(r["facts base"])),
    ]
    table = ResultTable(f"{args.concept}: held-out, no directive", columns, rows)
    print_tables(table)
    print(table.markdown())


if __name__ == "__main__":
    main()
