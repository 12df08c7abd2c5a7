"""How `gcm-edit export` picks heads and α: --method random, --alpha/--k auto, --kl-budget,
--rank-by effect-per-kl, --edit scales."""

from __future__ import annotations

import json

import pytest
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
    extra = ["--alpha", "auto", "--alphas", "1,3", "--n-validation", "2"]
    result = _export(env["model"], out, *extra, "--k", "auto", "--ks", "25,50")
    assert result.exit_code == 0, (result.output, result.exception)
    manifest = json.loads((out / "gcm_edit.json").read_text())
    selection = manifest["selection"]
    assert selection["alpha"] == "auto" and selection["k_percent"] == "auto"
    grid = {(r["k_percent"], r["alpha"]) for r in selection["validation"]}
    assert grid == {(25.0, 1.0), (25.0, 3.0), (50.0, 1.0), (50.0, 3.0)}
    best = max(
        selection["validation"], key=lambda r: (r["success"], -r["kl"], -r["n_heads"], -r["alpha"])
    )
    assert selection["chosen"] == {
        "alpha": best["alpha"],
        "k_percent": best["k_percent"],
        "positions": "response",
        "rank_by": "effect",
        "intervention": "additive",
    }
    assert manifest["steering"]["alpha"] == best["alpha"]
    assert manifest["steering"]["k_percent"] == best["k_percent"]
    assert len(manifest["steering"]["heads"]) == n_selected(12, best["k_percent"])
    assert "chosen among 4 candidates on the validation split" in (out / "README.md").read_text()
    assert manifest["retention"]["kl"] > 0


def test_export_under_a_kl_budget(env, tmp_path):
    """--kl-budget: every grid point's KL is measured, success only for the strongest α inside
    the budget per (ranking, k); the most successful of those is exported, its KL within the
    budget; the card shows the frontier it was chosen from."""
    budget = 0.05
    out = tmp_path / "budget"
    extra = ["--kl-budget", str(budget), "--alphas", "0.25,1,4", "--ks", "25,50"]
    result = _export(env["model"], out, *extra, "--n-validation", "2")
    assert result.exit_code == 0, (result.output, result.exception)
    manifest = json.loads((out / "gcm_edit.json").read_text())
    selection = manifest["selection"]
    assert selection["kl_budget"] == budget
    rows = selection["validation"]
    assert rows and all(r["kl"] <= budget for r in rows)
    assert {(r["rank_by"], r["intervention"], r["k_percent"]) for r in rows} <= {
        (rank, edit, k)
        for rank in ("effect", "effect-per-kl")
        for edit in ("additive", "rank1")
        for k in (25.0, 50.0)
    }
    best = max(rows, key=lambda r: (r["success"], -r["kl"], -r["n_heads"], -r["alpha"]))
    chosen = selection["chosen"]
    assert chosen == {
        name: best[name] for name in ("alpha", "k_percent", "positions", "rank_by", "intervention")
    }
    assert manifest["steering"]["rank_by"] == best["rank_by"]
    assert manifest["steering"]["intervention"] == best["intervention"]
    assert manifest["retention"]["kl"] == pytest.approx(best["kl"], abs=1e-5)
    card = (out / "README.md").read_text()
    assert f"a KL budget of {budget:g} per neutral token asked for" in card
    if len(rows) > 1:
        assert "## Where this plan sits" in card and "◀ chosen" in card


def test_kl_budget_below_every_plan_is_one_line(env, tmp_path):
    out = tmp_path / "impossible"
    result = _export(env["model"], out, "--kl-budget", "1e-9", "--alphas", "1")
    assert result.exit_code == 2
    assert "no plan on the grid is within --kl-budget 1e-09" in result.stderr
    assert not out.exists()


def test_effect_per_kl_ranking_export(env, tmp_path):
    """--rank-by effect-per-kl: the heads are the top k% by score / √collateral."""
    out = tmp_path / "per-kl"
    result = _export(env["model"], out, "--rank-by", "effect-per-kl")
    assert result.exit_code == 0, (result.output, result.exception)
    manifest = json.loads((out / "gcm_edit.json").read_text())
    assert manifest["steering"]["rank_by"] == "effect-per-kl"
    heads = [(h["layer"], h["head"]) for h in manifest["steering"]["heads"]]
    assert len(heads) == n_selected(12, K_PERCENT)
    assert all(h["score"] > 0 and h["collateral"] > 0 for h in manifest["steering"]["heads"])
    ratios = [h["score"] / h["collateral"] ** 0.5 for h in manifest["steering"]["heads"]]
    assert ratios == sorted(ratios, reverse=True)
    assert "score per √(KL of the head steered alone" in (out / "README.md").read_text()


def test_learned_scales_export(env, tmp_path):
    """--edit scales: warm start from the uniform plan, KL held to that plan's own KL, the
    best snapshot on validation kept (its c in the manifest), verified, compared held-out."""
    out = tmp_path / "learned"
    extra = [
        "--edit",
        "scales",
        "--scale-candidates",
        "50",
        "--edit-steps",
        "8",
        "--edit-eval-every",
        "4",
        "--lambda-m",
        "0.2",
    ]
    result = _export(env["model"], out, *extra, "--n-validation", "2")
    assert result.exit_code == 0, (result.output, result.exception)
    manifest = json.loads((out / "gcm_edit.json").read_text())
    learning = manifest["edit"]
    assert learning["kind"] == "scales"
    uniform = n_selected(12, K_PERCENT)
    assert len(learning["candidates"]) == 6 and len(learning["history"]) == 8
    assert learning["objective"]["init_c"] == [1.0] * uniform + [0.0] * (6 - uniform)
    target = learning["objective"]["kl_target"]  # the uniform plan's own KL
    assert target == pytest.approx(learning["comparison"][1]["kl"], rel=1e-6)
    steps = [int(r["method"].rsplit(" ", 1)[1]) for r in learning["validation"]]
    assert set(steps) <= {0, 4, 8} and learning["chosen_step"] in steps
    assert all(r["kl"] <= target + 1e-5 for r in learning["validation"])  # rows: 5 decimals
    survivors = [
        (tuple(h), c) for h, c in zip(learning["candidates"], learning["c"], strict=True) if c
    ]
    heads = manifest["steering"]["heads"]
    assert [((h["layer"], h["head"]), h["scale"]) for h in heads] == survivors
    assert learning["surviving"] == len(survivors) >= 1
    assert [row["plan"] for row in learning["comparison"]] == ["steered", "uniform α"]
    assert learning["comparison"][1]["heads"] == uniform
    assert manifest["verification"]["greedy_identical"] is True
    assert manifest["verification"]["max_abs_logit_diff"] <= 1e-4
    assert "uniform α" in manifest["metrics"]
    assert "## Learned scales" in (out / "README.md").read_text()
    plan = SteeringPlan.load(out)
    assert plan.scales == [c for _, c in survivors]
    verified = CliRunner().invoke(app, ["verify", str(out)])
    assert verified.exit_code == 0, verified.output
