"""`gcm-edit calibrate` on the tiny model: δ positions × α on the validation split."""

from __future__ import annotations

import csv

from export_helpers import N_TRAIN
from typer.testing import CliRunner

from gcm_edit.cli.app import app


def test_calibrate_on_tiny_model(env, tmp_path):
    out = tmp_path / "calibration.csv"
    args = ["calibrate", "--model", str(env["model"]), "--n-train", str(N_TRAIN)]
    args += ["--max-new-tokens", "8", "--batch-size", "3", "--n-validation", "2", "--k", "25"]
    result = CliRunner().invoke(
        app, [*args, "--alphas", "1,2", "--positions-grid", "all,response", "--out", str(out)]
    )
    assert result.exit_code == 0, (result.output, result.exception)
    with open(out) as f:
        rows = list(csv.DictReader(f))
    assert [(r["positions"], r["alpha"]) for r in rows] == [
        ("", "0.0"),
        ("all", "1.0"),
        ("all", "2.0"),
        ("response", "1.0"),
        ("response", "2.0"),
    ]
    assert rows[0]["method"] == "base" and {r["n_heads"] for r in rows[1:]} == {"3"}
    assert "best on validation" in result.output
