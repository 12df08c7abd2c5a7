"""Plain helpers for the command tests in this folder: the tiny export's CLI call and sizes.

The fixtures (one tiny model folder and one warm cache for the whole folder) are in
conftest.py. The names keep their leading underscore so the moved tests read as before.
"""

from __future__ import annotations

from typer.testing import CliRunner

from gcm_edit.cli.app import app

N_TRAIN = 4
K_PERCENT = 25  # 3 of the tiny model's 12 heads


def _args(model_dir, out, *extra: str) -> list[str]:
    # --kl-budget with the mean-difference edit chooses k% itself (giving --k is refused)
    searched = "--kl-budget" in extra and "distilled" not in extra
    return [
        "export",
        "--model",
        str(model_dir),
        "--n-train",
        str(N_TRAIN),
        "--n-heldout",
        "2",
        "--max-new-tokens",
        "8",
        *([] if searched else ["--k", str(K_PERCENT)]),
        "--batch-size",
        "3",
        "--out",
        str(out),
        # a random tiny model writes no answer the judges keep, so there is nothing to distil
        # from: the mean-difference edit; --edit distilled in `extra` wins (test_export_distilled)
        "--edit",
        "mean-diff",
        *extra,
    ]


def _export(model_dir, out, *extra: str):
    return CliRunner().invoke(app, _args(model_dir, out, *extra))


def _leftovers(out) -> list:
    return sorted(p.name for p in out.parent.glob(f".{out.name}.*"))
