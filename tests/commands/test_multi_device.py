"""`sweep` and `calibrate` with `--devices 2` on CPUs: both processes score (Lightning launches
the second), rank zero alone measures and writes, from scores equal to one process's."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from export_helpers import N_TRAIN
from safetensors.torch import load_file

from gcm_edit.scoring.table import read_scores_csv

GCM_EDIT = str(Path(sys.executable).with_name("gcm-edit"))
COMMON = ["--n-train", str(N_TRAIN), "--max-new-tokens", "8", "--batch-size", "3"]
# command → its grid (one plan), where its table lands in --out, and its rows (base + plan)
GRIDS = {
    "sweep": (["--methods", "attribution", "--rankings", "effect", "--ks", "25"], "sweep.csv"),
    "calibrate": (["--k", "25", "--positions-grid", "response"], ""),
}


def _rows(path: Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("command", list(GRIDS))
def test_two_devices_score_and_rank_zero_writes(exported, env, tmp_path, command):
    cache = tmp_path / "cache"
    shutil.copytree(env["cache"], cache)
    for entry in cache.glob("runs/*/scores-*.safetensors"):
        entry.unlink()  # the two processes score; pairs and δ stay warm
    grid, table = GRIDS[command]
    out = tmp_path / ("sweep" if table else "calibration.csv")
    args = [GCM_EDIT, command, "--model", str(env["model"]), *COMMON, *grid]
    args += ["--n-validation", "2", "--alphas", "1", "--devices", "2", "--out", str(out)]
    proc = subprocess.run(
        args,
        env={**os.environ, "GCM_EDIT_CACHE": str(cache)},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert (proc.stdout + proc.stderr).count("✓ mediation scores (") == 2  # one per process
    (stored,) = cache.glob("runs/*/scores-*.safetensors")  # rank zero stored them, once
    single = read_scores_csv(exported[0] / "scores.csv")  # the export's, one process
    torch.testing.assert_close(load_file(stored)["scores"], single, rtol=1e-5, atol=1e-6)
    rows = _rows(out / table if table else out)
    assert [r["method"] for r in rows] == ["base", "attribution"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", out.name]  # nothing partial
