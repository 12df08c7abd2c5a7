"""`gcm-edit score` on the tiny model: every method's scores, heatmap and metadata."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from export_helpers import K_PERCENT, N_TRAIN, _export
from typer.testing import CliRunner

from gcm_edit.checkpoint.reports import ScoresReport
from gcm_edit.cli.app import app
from gcm_edit.scoring.table import read_scores_csv
from gcm_edit.steering.plan import select_heads


def _score(model_dir, out, *extra: str):
    args = ["score", "--model", str(model_dir), "--n-train", str(N_TRAIN), "--max-new-tokens"]
    args += ["8", "--k", str(K_PERCENT), "--batch-size", "3", "--out", str(out), *extra]
    return CliRunner().invoke(app, args)


@pytest.mark.parametrize(
    "method", ["attribution", "activation", "knockout", "probe", "distillation", "random"]
)
def test_score_command(exported, env, tmp_path, method):
    """`gcm-edit score` writes every head's score, a heatmap and metadata naming the method."""
    out = tmp_path / "scores"
    result = _score(env["model"], out, "--method", method)
    assert result.exit_code == 0, (result.output, result.exception)
    assert (out / "scores.png").read_bytes()[:4] == b"\x89PNG"
    scores = read_scores_csv(out / "scores.csv")
    assert scores.shape == (3, 4) and scores.abs().max() > 0
    meta = json.loads((out / "scores.json").read_text())
    ScoresReport.model_validate(meta)  # the file reads back as what wrote it
    assert meta["method"] == method and meta["n_pairs"] == N_TRAIN
    expected = [{"layer": la, "head": h} for la, h in select_heads(scores, K_PERCENT)]
    assert [{k: row[k] for k in ("layer", "head")} for row in meta["top_heads"]] == expected
    if method == "attribution":  # same settings as the export: the cached scores are shared
        torch.testing.assert_close(scores, read_scores_csv(exported[0] / "scores.csv"))
    again = _score(env["model"], out, "--method", method)
    assert again.exit_code == 2 and "already exists; pass --force" in again.stderr


def test_paper_method_needs_aligned_prompts(env, tmp_path):
    """The verse directives differ in length, so position-wise patching is refused in one line."""
    out = tmp_path / "scores"
    result = _score(env["model"], out, "--method", "paper")
    assert result.exit_code == 2, (result.output, result.exception)
    assert "equal token length" in result.stderr and not out.exists()


def test_scores_sharded_over_two_processes_feed_the_export(exported, env, tmp_path, monkeypatch):
    """`gcm-edit score --strategy fsdp --devices 2` on CPUs: Lightning launches the second
    process, FSDP shards the model over both (gloo); the scores are one process's and
    `export` takes them from the cache."""
    cache = tmp_path / "cache"
    shutil.copytree(env["cache"], cache)
    for entry in cache.glob("runs/*/scores-*.safetensors"):
        entry.unlink()  # pairs and δ stay warm: the two processes score, nothing else
    out = tmp_path / "scores"
    command = [str(Path(sys.executable).with_name("gcm-edit")), "score", "--model"]
    command += [str(env["model"]), "--n-train", str(N_TRAIN), "--max-new-tokens", "8", "--k"]
    command += [str(K_PERCENT), "--batch-size", "3", "--strategy", "fsdp", "--devices", "2"]
    proc = subprocess.run(
        [*command, "--out", str(out)],
        env={**os.environ, "GCM_EDIT_CACHE": str(cache)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert (proc.stdout + proc.stderr).count("✓ mediation scores (") == 2  # one per process
    sharded = read_scores_csv(out / "scores.csv")
    single = read_scores_csv(exported[0] / "scores.csv")
    torch.testing.assert_close(sharded, single, rtol=1e-5, atol=1e-6)
    assert select_heads(sharded, K_PERCENT) == select_heads(single, K_PERCENT)
    assert len(list(cache.glob("runs/*/scores-*.safetensors"))) == 1
    monkeypatch.setenv("GCM_EDIT_CACHE", str(cache))
    result = _export(env["model"], tmp_path / "export")
    assert result.exit_code == 0, (result.output, result.exception)
    assert "mediation scores (cached)" in result.output
