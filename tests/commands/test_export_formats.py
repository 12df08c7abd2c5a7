"""`gcm-edit export` outputs: a PEFT adapter (--format adapter), bias-free scale and rank-1
edits."""

from __future__ import annotations

import json

import torch
from export_helpers import K_PERCENT, _export
from typer.testing import CliRunner

from gcm_edit.cli.app import app
from gcm_edit.steering.plan import SteeringPlan, n_selected


def _weight_only_export(env, out, intervention: str, alpha: str) -> tuple[dict, SteeringPlan, str]:
    """Export with an intervention that edits o_proj's columns only: it verifies, the plan
    round-trips (so `gcm-edit verify` rebuilds it) and the checkpoint has no o_proj bias."""
    from transformers import AutoModelForCausalLM

    result = _export(env["model"], out, "--intervention", intervention, "--alpha", alpha)
    assert result.exit_code == 0, (result.output, result.exception)
    manifest = json.loads((out / "gcm_edit.json").read_text())
    assert manifest["steering"]["intervention"] == intervention
    export = manifest["export"]
    assert (export["class"], export["format"], export["exact_up_to_tokens"]) == (
        "LlamaForCausalLM",
        "full",
        None,
    )
    assert manifest["verification"]["max_abs_logit_diff"] <= 1e-4
    verified = CliRunner().invoke(app, ["verify", str(out)])
    assert verified.exit_code == 0, verified.output
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.config.attention_bias is False
    assert model.model.layers[0].self_attn.o_proj.bias is None
    return manifest, SteeringPlan.load(out), result.output.replace("\n", " ")


def test_scale_intervention_export(env, tmp_path):
    """--intervention scale: a pure o_proj-column edit, no bias, described as such."""
    out = tmp_path / "scaled"
    manifest, plan, output = _weight_only_export(env, out, "scale", "3")
    scaled = [h for h in manifest["steering"]["heads"] if h.get("head_scale") == 3.0]
    assert len(scaled) == n_selected(12, K_PERCENT)
    assert "o_proj columns) scaled by 3.0" in (out / "README.md").read_text()
    assert f"({len(scaled)} heads, scale, α=3.0)" in output
    assert plan.heads == [] and len(plan.scaled_heads) == len(scaled)
    assert plan.head_scales == [3.0] * len(scaled)


def test_rank1_intervention_export(env, tmp_path):
    """--intervention rank1: rank-1 o_proj-column edits, no bias, verified against the hooks."""
    out = tmp_path / "rank1"
    manifest, plan, _ = _weight_only_export(env, out, "rank1", "2")
    rows = [h for h in manifest["steering"]["heads"] if h.get("rank1_scale") == 1.0]
    assert len(rows) == len(manifest["steering"]["heads"]) == n_selected(12, K_PERCENT)
    assert "rank-1 edits of the output-projection columns" in (out / "README.md").read_text()
    assert plan.heads == plan.scaled_heads == [] and len(plan.rank1_heads) == len(rows)


def test_adapter_export(env, tmp_path):
    """--format adapter: a small PEFT folder, verified against the hooked model like any export."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    out = tmp_path / "adapter"
    result = _export(env["model"], out, "--format", "adapter")
    assert result.exit_code == 0, (result.output, result.exception)
    names = {p.name for p in out.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "gcm_edit.json"} <= names
    assert "model.safetensors" not in names
    manifest = json.loads((out / "gcm_edit.json").read_text())
    export = manifest["export"]
    assert export["format"] == "adapter" and export["class"].startswith("PeftModel")
    assert 0 < export["weights_bytes"] < export["base_weights_bytes"]
    assert manifest["verification"]["greedy_identical"] is True
    card = (out / "README.md").read_text()
    assert "PeftModel.from_pretrained" in card and "rescale_adapter_scale" in card
    # the dose curve: 0 (base) and 1 (the export) from the figures already there, the
    # default doses measured on the plan at that multiple
    curve = manifest["dose_curve"]
    assert [row["dose"] for row in curve] == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert curve[0]["kl"] == 0.0 and curve[0]["success"] == manifest["metrics"]["base"]["success"]
    assert curve[2]["kl"] == manifest["retention"]["kl"]
    assert curve[1]["kl"] < curve[2]["kl"] < curve[3]["kl"] < curve[4]["kl"]
    assert "| dose (LoRA scale) |" in card
    base = AutoModelForCausalLM.from_pretrained(env["model"]).eval()
    plan = SteeringPlan.load(out)
    ids = torch.randint(4, 64, (1, 10), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        with plan.apply(base):
            hooked = base(input_ids=ids).logits
        loaded = PeftModel.from_pretrained(base, out).eval()
        torch.testing.assert_close(loaded(input_ids=ids).logits, hooked, rtol=0, atol=1e-4)


def test_no_dose_curve_when_asked_for_none(env, tmp_path):
    out = tmp_path / "adapter"
    result = _export(env["model"], out, "--format", "adapter", "--doses", "")
    assert result.exit_code == 0, (result.output, result.exception)
    assert "dose_curve" not in json.loads((out / "gcm_edit.json").read_text())
    assert "rescale_adapter_scale" in (out / "README.md").read_text()


def test_adapter_refuses_gguf(env, tmp_path):
    result = _export(env["model"], tmp_path / "x", "--format", "adapter", "--gguf", "f32")
    assert result.exit_code == 2 and "--gguf needs --format full" in result.stderr


def test_gguf_type_must_be_one_the_converter_writes(env, tmp_path):
    result = _export(env["model"], tmp_path / "x", "--gguf", "q4_k_m")
    assert result.exit_code == 2 and "--gguf" in result.stderr and "'f32'" in result.stderr
    assert not (tmp_path / "x").exists()
