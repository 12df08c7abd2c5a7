"""`gcm-edit sweep` on the tiny model: the (method, k, α) grid, its plot and its report."""

from __future__ import annotations

import csv

from export_helpers import N_TRAIN
from typer.testing import CliRunner

from gcm_edit.cli.app import app


def test_sweep_on_tiny_model(exported, env, tmp_path):
    """CSV with one row per (method, k, α) plus base, a PNG and a markdown report."""
    out = tmp_path / "sweep"
    args = ["sweep", "--model", str(env["model"]), "--n-train", str(N_TRAIN)]
    args += ["--max-new-tokens", "8", "--batch-size", "3", "--n-validation", "2"]
    args += ["--methods", "attribution,random,all", "--ks", "25,50", "--alphas", "1,2"]
    result = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, (result.output, result.exception)
    with open(out / "sweep.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 + 2 * 2 * 2 + 2
    assert [r["method"] for r in rows][:1] == ["base"]
    assert {(r["method"], r["k_percent"]) for r in rows[1:]} == {
        ("attribution", "25.0"),
        ("attribution", "50.0"),
        ("random", "25.0"),
        ("random", "50.0"),
        ("all", "100.0"),
    }
    for row in rows:
        assert 0 <= float(row["success"]) <= 1 and float(row["kl"]) >= 0
    assert {int(r["n_heads"]) for r in rows if r["method"] == "all"} == {12}
    assert (out / "sweep.png").read_bytes()[:4] == b"\x89PNG"
    report = (out / "report.md").read_text()
    assert "| attribution |" in report and "| random |" in report and "All heads" in report
    again = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert again.exit_code == 2 and "already exists" in again.stderr
