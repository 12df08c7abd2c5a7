"""How `gcm-edit export` picks heads and α: --method random, --alpha/--k auto, --learn-scales."""

from __future__ import annotations

import json

from export_helpers import K_PERCENT, _export
from typer.testing import CliRunner

from gcm_edit.cli.app import app
from gcm_edit.model.heads import HeadGeometry
from gcm_edit.scoring.methods import random_scores
from gcm_edit.steering.plan import SteeringPlan, n_selected, select_heads


def test_export_with_random_selection(env, tmp_path):
    """--method random drives selection: the manifest says so and the heads follow the seed."""
    out = tmp_path / "random"
    result = _export(env["model"], out, "--method", "random", "--seed", "7")
    assert result.exit_code == 0, (result.output, result.exception)
    manifest = json.loads((out / "gcm_edit.json").read_text())
    assert manifest["method"] == "random"
    expected = select_heads(random_scores(HeadGeometry(3, 4, 16), 7), K_PERCENT)
    assert [(h["layer"], h["head"]) for h in manifest["steering"]["heads"]] == expected
    assert "ranked by `random`" in (out / "README.md").read_text()


def test_export_auto_alpha_and_k(env, tmp_path):
    """--alpha auto --k auto: chosen on validation, recorded in the manifest and the card."""
    out = tmp_path / "auto"
    extra = ["--alpha", "auto", "--auto-alphas", "1,3", "--n-validation", "2"]
    result = _export(env["model"], out, *extra, "--k", "auto", "--auto-ks", "25,50")
    assert result.exit_code == 0, (result.output, result.exception)
    manifest = json.loads((out / "gcm_edit.json").read_text())
    selection = manifest["selection"]
    assert selection["alpha"] == "auto" and selection["k_percent"] == "auto"
    grid = {(r["k_percent"], r["alpha"]) for r in selection["validation"]}
    assert grid == {(25.0, 1.0), (25.0, 3.0), (50.0, 1.0), (50.0, 3.0)}
    best = max(
        selection["validation"], key=lambda r: (r["success"], -r["kl"], -r["n_heads"], -r["alpha"])
    )
    assert selection["chosen"] == {"alpha": best["alpha"], "k_percent": best["k_percent"]}
    assert manifest["steering"]["alpha"] == best["alpha"]
    assert manifest["steering"]["k_percent"] == best["k_percent"]
    assert len(manifest["steering"]["heads"]) == n_selected(12, best["k_percent"])
    assert "chosen among 4 candidates on the validation split" in (out / "README.md").read_text()
    assert manifest["retention"]["kl"] > 0


def test_learned_scales_export(env, tmp_path):
    """--learn-scales: surviving heads keep their learned c, verified, compared to uniform α."""
    out = tmp_path / "learned"
    extra = [
        "--learn-scales",
        "--scale-candidates",
        "50",
        "--scale-steps",
        "8",
        "--lambda-m",
        "0.2",
    ]
    result = _export(env["model"], out, *extra, "--n-validation", "2", "--auto-alphas", "1,2")
    assert result.exit_code == 0, (result.output, result.exception)
    manifest = json.loads((out / "gcm_edit.json").read_text())
    learning = manifest["scale_learning"]
    assert len(learning["candidates"]) == 6 and len(learning["history"]) == 8
    survivors = [
        (tuple(h), c) for h, c in zip(learning["candidates"], learning["c"], strict=True) if c
    ]
    heads = manifest["steering"]["heads"]
    assert [((h["layer"], h["head"]), h["scale"]) for h in heads] == survivors
    assert learning["surviving"] == len(survivors) >= 1
    assert {row["plan"] for row in learning["comparison"]} == {"steered", "uniform α"}
    assert all(row["heads"] == len(survivors) for row in learning["comparison"])
    assert manifest["verification"]["greedy_identical"] is True
    assert manifest["verification"]["max_abs_logit_diff"] <= 1e-4
    assert "uniform α" in manifest["metrics"]
    assert "## Learned scales" in (out / "README.md").read_text()
    plan = SteeringPlan.load(out)
    assert plan.scales == [c for _, c in survivors]
    verified = CliRunner().invoke(app, ["verify", str(out)])
    assert verified.exit_code == 0, verified.output
