"""The success-vs-KL frontier of docs/results.md, from one command: attribution with both
rankings and both edits (additive, rank-1), the probe, random and all-heads baselines, and
learned scales, on the default model's verse recipe, measured on its validation split.

    .venv/bin/python bench/pareto.py [--out DIR] [--n-validation N] [--old-judge]

Runs `gcm-edit sweep` over the grids below (answers and scores come from the run cache, so a
re-run only measures what is new; cold, about an hour on 2 CPU cores), writes
pareto.png, pareto.csv, sweep.png and report.md to DIR and prints the frontier. With
`--old-judge` the same answers and cached figures are judged with the fluency limits from
before the reader labels (docs/results.md shows both frontiers side by side).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from fluency import judged_as_before

CONCEPT = "verse"  # the recipe the frontier is drawn for
MAIN = {  # GCM's own choices, densely
    "methods": ["attribution"],
    "rankings": ["effect", "effect-per-kl"],
    "interventions": ["additive", "rank1"],
    "ks": [2.0, 5.0, 10.0],
    "alphas": [0.5, 1.0, 2.0],
    "learn_scales": True,  # from the best attribution plan, at no more KL
}
BASELINES = [  # at the default α: where the other selections sit
    {"methods": ["probe", "random", "all"], "ks": [2.0, 5.0, 10.0], "alphas": [1.0]},
    {"methods": ["all"], "interventions": ["rank1"], "alphas": [1.0]},
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench-pareto"))
    parser.add_argument("--n-validation", type=int, default=None)
    parser.add_argument("--old-judge", action="store_true", help="fluency as before the labels")
    args = parser.parse_args()

    from gcm_edit.commands.sweep import sweep
    from gcm_edit.commands.sweep_settings import SweepSettings
    from gcm_edit.console import quiet_libraries

    quiet_libraries()
    common = {"out": args.out, "force": True, "n_validation": args.n_validation}
    with tempfile.TemporaryDirectory(prefix="gcm-pareto-") as folder:
        if args.old_judge:
            common["concept"] = judged_as_before(CONCEPT, Path(folder))
        extra = tuple(SweepSettings(**grid, **common) for grid in BASELINES)
        sweep(SweepSettings(**MAIN, **common), extra)


if __name__ == "__main__":
    main()
