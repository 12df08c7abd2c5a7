"""The PEFT adapter export is the steered model exactly, and merges into the full export."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from tiny import family_model, rank1_plan

from gcm_edit.checkpoint.adapter import build_adapter
from gcm_edit.checkpoint.bake import bake
from gcm_edit.model.heads import HeadGeometry
from gcm_edit.steering.plan import SteeringPlan

IDS = torch.tensor([[1, 5, 7, 9, 3, 4, 8, 11, 12, 30, 31, 40]])


def _plan(model, scaled: bool, rank1: bool = False) -> SteeringPlan:
    """Additive heads in two layers, plus (optionally) scaled heads, one sharing a layer, and
    rank-1 heads: one also scaled, one also additive, one alone in its layer without `scaled`."""
    g = HeadGeometry.of(model.config)
    vectors = torch.randn(3, g.head_dim, generator=torch.Generator().manual_seed(1))
    plan = SteeringPlan(g, [(0, 1), (2, 0), (2, 3)], vectors, 1.7, [1.0, -0.5, 2.0])
    if scaled:
        plan.scaled_heads, plan.head_scales = [(1, 2), (2, 1)], [0.4, 2.5]
    if rank1:
        edits = rank1_plan(model, heads=[(1, 2), (1, 3), (2, 0)], seed=2)
        plan = replace(
            plan,
            rank1_heads=edits.rank1_heads,
            rank1_vectors=edits.rank1_vectors,
            rank1_reads=edits.rank1_reads,
            rank1_scales=edits.rank1_scales,
        )
    return plan


def _logits(model) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=IDS).logits.float()


@pytest.mark.parametrize("family", ["llama", "qwen3"])
@pytest.mark.parametrize("scaled", [False, True])
@pytest.mark.parametrize("rank1", [False, True])
def test_adapter_equals_hooked_and_merges_into_full_export(family, scaled, rank1, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = family_model(family, kv_heads=2, seed=3)
    plan = _plan(base, scaled, rank1)
    with plan.apply(base):
        hooked = _logits(base)

    build_adapter(base, plan).save_pretrained(tmp_path / "adapter")
    assert {p.name for p in (tmp_path / "adapter").iterdir()} >= {
        "adapter_config.json",
        "adapter_model.safetensors",
    }
    fresh_base = family_model(family, kv_heads=2, seed=3)
    loaded = PeftModel.from_pretrained(fresh_base, tmp_path / "adapter")
    torch.testing.assert_close(_logits(loaded), hooked, rtol=0, atol=1e-4)
    assert (_logits(loaded) - _logits(base)).abs().max() > 1e-2  # the steering is not a no-op

    # Merging needs o_proj biases in the base: load it with attention_bias=True (the model
    # card's recipe); the missing biases are initialised to zero.
    base.save_pretrained(tmp_path / "base")
    biased = AutoModelForCausalLM.from_pretrained(tmp_path / "base", attention_bias=True).eval()
    merged = PeftModel.from_pretrained(biased, tmp_path / "adapter").merge_and_unload()
    torch.testing.assert_close(_logits(merged), _logits(bake(base, plan)), rtol=0, atol=1e-4)


def test_adapter_is_small(tmp_path):
    base = family_model("llama", kv_heads=2)
    build_adapter(base, _plan(base, scaled=False)).save_pretrained(tmp_path / "a")
    base.save_pretrained(tmp_path / "full")
    adapter = (tmp_path / "a" / "adapter_model.safetensors").stat().st_size
    assert adapter < (tmp_path / "full" / "model.safetensors").stat().st_size / 10


@pytest.mark.parametrize("dose", [0.0, 0.5, 1.5, 2.0])
def test_lora_scale_is_the_dose(dose, tmp_path):
    """PEFT's LoRA scale (bias included) turns the adapter into the plan at `dose`: the three
    ways a user sets it at serve time give the hooked `plan.dosed(dose)`."""
    import json

    from peft import PeftModel
    from peft.helpers import rescale_adapter_scale
    from peft.tuners.lora import LoraLayer

    base = family_model("llama", kv_heads=2, seed=3)
    plan = _plan(base, scaled=True, rank1=True)
    with plan.dosed(dose).apply(base):
        hooked = _logits(base)
    build_adapter(base, plan).save_pretrained(tmp_path / "adapter")
    loaded = PeftModel.from_pretrained(
        family_model("llama", kv_heads=2, seed=3), tmp_path / "adapter"
    )
    with rescale_adapter_scale(loaded, dose):
        torch.testing.assert_close(_logits(loaded), hooked, rtol=0, atol=1e-4)
    for module in loaded.modules():
        if isinstance(module, LoraLayer):
            module.set_scale("default", dose)
    torch.testing.assert_close(_logits(loaded), hooked, rtol=0, atol=1e-4)

    config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    config["alpha_pattern"] = {k: v * dose for k, v in config["alpha_pattern"].items()}
    (tmp_path / "adapter" / "adapter_config.json").write_text(json.dumps(config))
    edited = PeftModel.from_pretrained(
        family_model("llama", kv_heads=2, seed=3), tmp_path / "adapter"
    )
    torch.testing.assert_close(_logits(edited), hooked, rtol=0, atol=1e-4)


def test_dose_zero_is_the_base_and_dose_one_the_plan():
    base = family_model("llama", kv_heads=2, seed=3)
    plan = _plan(base, scaled=True, rank1=True)
    with plan.dosed(0.0).apply(base):
        torch.testing.assert_close(
            _logits(base), _logits(family_model("llama", kv_heads=2, seed=3))
        )
    assert plan.dosed(1.0).fingerprint() == plan.fingerprint()
