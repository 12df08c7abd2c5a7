"""`gcm-edit sweep` on the tiny model: the (method, ranking, k, α) grid, its plots, the
success-vs-KL frontier and the report."""

from __future__ import annotations

import csv

from export_helpers import N_TRAIN
from typer.testing import CliRunner

from gcm_edit.cli.app import app


def test_sweep_on_tiny_model(exported, env, tmp_path):
    """CSV with one row per (method, ranking, k, α) plus base, PNGs and a markdown report;
    pareto.csv marks exactly the rows no other row dominates in (success ↑, KL ↓)."""
    out = tmp_path / "sweep"
    args = ["sweep", "--model", str(env["model"]), "--n-train", str(N_TRAIN)]
    args += ["--max-new-tokens", "8", "--batch-size", "3", "--n-validation", "2"]
    args += ["--methods", "attribution,random,all", "--ks", "25,50", "--alphas", "1,2"]
    result = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, (result.output, result.exception)
    with open(out / "sweep.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 + 2 * 2 * 2 + 2 * 2 + 2  # attribution ranked both ways
    assert [r["method"] for r in rows][:1] == ["base"]
    assert {(r["method"], r["rank_by"], r["k_percent"]) for r in rows[1:]} == {
        ("attribution", "effect", "25.0"),
        ("attribution", "effect", "50.0"),
        ("attribution", "effect-per-kl", "25.0"),
        ("attribution", "effect-per-kl", "50.0"),
        ("random", "effect", "25.0"),
        ("random", "effect", "50.0"),
        ("all", "effect", "100.0"),
    }
    for row in rows:
        assert 0 <= float(row["success"]) <= 1 and float(row["kl"]) >= 0
    assert {int(r["n_heads"]) for r in rows if r["method"] == "all"} == {12}
    assert (out / "sweep.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "pareto.png").read_bytes()[:4] == b"\x89PNG"
    with open(out / "pareto.csv") as f:
        pareto = list(csv.DictReader(f))
    assert [{k: v for k, v in r.items() if k != "pareto"} for r in pareto] == rows
    points = [(float(r["success"]), float(r["kl"])) for r in rows]
    for row, (success, kl) in zip(pareto, points, strict=True):
        dominated = any(s >= success and k <= kl and (s > success or k < kl) for s, k in points)
        assert row["pareto"] == str(not dominated)
    assert any(r["pareto"] == "True" for r in pareto)
    report = (out / "report.md").read_text()
    assert "| attribution |" in report and "| random |" in report and "All heads" in report
    assert "attribution / effect-per-kl" in report and "## The frontier" in report
    assert "Prompting reference" in report
    again = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert again.exit_code == 2 and "already exists" in again.stderr


def test_sweep_with_extra_grids_and_learned_scales(exported, env, tmp_path):
    """One frontier from several grids (bench/pareto.py): the extra grid's rows join the main
    one's; --learn-scales adds a row per snapshot within the start plan's KL, step 0 first
    (the warm start is that plan itself, so its success and KL are the start row's)."""
    from gcm_edit.commands.sweep import sweep
    from gcm_edit.commands.sweep_settings import SweepSettings

    common = dict(
        model=str(env["model"]),
        n_train=N_TRAIN,
        max_new_tokens=8,
        batch_size=3,
        n_validation=2,
        out=tmp_path / "sweep",
    )
    main = SweepSettings(
        methods=["attribution"],
        rankings=["effect"],
        ks=[25],
        alphas=[1],
        learn_scales=True,
        edit_steps=4,
        edit_eval_every=2,
        scale_candidates=50,
        **common,
    )
    extra = SweepSettings(
        methods=["random"], interventions=["rank1"], ks=[50], alphas=[2], **common
    )
    out = sweep(main, (extra,))
    with open(out / "pareto.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["method"], r["intervention"]) for r in rows[:3]] == [
        ("base", "additive"),
        ("attribution", "additive"),
        ("random", "rank1"),
    ]
    learned = rows[3:]
    assert learned and learned[0]["method"] == "learned, step 0"
    assert {r["method"] for r in learned} <= {f"learned, step {n}" for n in (0, 2, 4)}
    start = rows[1]
    assert (learned[0]["success"], learned[0]["kl"]) == (start["success"], start["kl"])
    assert all(float(r["kl"]) <= float(start["kl"]) + 1e-5 for r in learned)
    assert "| learned, step 0 |" in (out / "report.md").read_text()
