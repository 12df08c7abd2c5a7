"""`export --edit caa` on the tiny model: the layer and c chosen on validation among the
candidates asked for, written into that layer's o_proj bias only, exact, and said so in the
manifest and the card; the options it cannot honour are refused before any work."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
from export_helpers import _export, _leftovers
from safetensors.torch import load_file
from typer.testing import CliRunner

from gcm_edit.cli.app import app
from gcm_edit.commands.edits.caa import CaaConfig
from gcm_edit.errors import GcmEditError
from gcm_edit.model.heads import HeadGeometry

CAA = ["--edit", "caa", "--caa-layers", "0,2", "--alphas", "1,3", "--n-validation", "2"]


def test_caa_export_is_chosen_on_validation_exact_and_reported(env, tmp_path):
    out = tmp_path / "caa"
    result = _export(env["model"], out, *CAA)
    assert result.exit_code == 0, (result.output, result.exception)
    manifest = json.loads((out / "gcm_edit.json").read_text())
    report, steering = manifest["edit"], manifest["steering"]
    assert report["kind"] == "caa"
    rows = report["validation"]
    assert sorted((r["method"], r["alpha"]) for r in rows) == [
        ("caa L0", 1.0), ("caa L0", 3.0), ("caa L2", 1.0), ("caa L2", 3.0)
    ]  # fmt: skip
    best = max(rows, key=lambda r: (r["success"]["rate"], -r["kl"]))
    assert (report["layer"], report["coefficient"]) == (int(best["method"][5:]), best["alpha"])
    assert steering["intervention"] == "residual" and steering["positions"] == "response"
    assert {(h["layer"], h["head"]) for h in steering["heads"]} == {
        (report["layer"], head) for head in range(4)
    }
    assert [row["plan"] for row in report["comparison"]] == ["steered", "mean-diff"]
    assert manifest["verification"]["greedy_identical"] is True

    weights = load_file(out / "model.safetensors")
    biases = {
        int(name.split(".")[2]): tensor
        for name, tensor in weights.items()
        if name.endswith("o_proj.bias")
    }
    for layer, bias in biases.items():
        assert bool(bias.abs().sum() > 0) == (layer == report["layer"]), layer

    card = (out / "README.md").read_text()
    assert "## Residual-stream edit (CAA)" in card and "played no part" in card
    assert "ranked by `" not in card
    verified = CliRunner().invoke(app, ["verify", str(out)])
    assert verified.exit_code == 0, verified.output


def test_caa_within_a_kl_budget_keeps_only_cheap_candidates(env, tmp_path):
    out = tmp_path / "tight"
    result = _export(env["model"], out, *CAA, "--kl-budget", "1e-12")
    assert result.exit_code == 2, (result.output, result.exception)
    assert "no CAA candidate is within --kl-budget 1e-12" in result.output
    assert not out.exists() and _leftovers(out) == []


def test_caa_refuses_a_layer_the_model_lacks_before_any_work(env, tmp_path, monkeypatch):
    def no_loading(*_args, **_kwargs):
        raise AssertionError("the model was loaded before --caa-layers was refused")

    monkeypatch.setattr("gcm_edit.commands.run.load_model", no_loading)
    out = tmp_path / "refused"
    result = _export(env["model"], out, "--edit", "caa", "--caa-layers", "7")
    assert result.exit_code == 2, (result.output, result.exception)
    assert "--caa-layers: the model has layers 0-2, not 7" in result.output
    assert not out.exists()


def test_caa_refuses_a_projection_narrower_than_the_residual_stream():
    """heads·head_dim < hidden_size: no o_proj bias can carry a residual vector."""
    config = SimpleNamespace(
        model_type="llama",
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        hidden_size=48,
        head_dim=8,
    )
    run = SimpleNamespace(config=config, geometry=HeadGeometry.of(config))
    with pytest.raises(GcmEditError, match="narrower than the residual stream"):
        CaaConfig().check(run)
    CaaConfig().check(SimpleNamespace(config=config, geometry=HeadGeometry(2, 4, 12)))


def test_default_layers_are_early_middle_and_late():
    assert CaaConfig().candidate_layers(30) == [7, 15, 22]
    assert CaaConfig(layers=[3, 3, 1]).candidate_layers(30) == [3, 1]
    assert torch.equal(torch.tensor(CaaConfig().candidate_layers(4)), torch.tensor([1, 2, 3]))
