"""Baking: the saved checkpoint, loaded by plain transformers, is the hooked steered model."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from tiny import HEADS, family_model, random_plan, rank1_plan
from transformers import AutoModelForCausalLM

from gcm_edit.checkpoint.bake import bake, export_class, needs_llamafy
from gcm_edit.errors import GcmEditError
from gcm_edit.model.heads import HeadGeometry, add_to_heads
from gcm_edit.steering.plan import SteeringPlan


def _ids(seed: int = 0) -> torch.Tensor:
    return torch.randint(4, 64, (2, 9), generator=torch.Generator().manual_seed(seed))


def test_bake_save_load_equals_hooked_model(llama_factory, variant, tmp_path):
    """Exported logits == hooked logits (≤1e-4 fp32), with no missing/unexpected keys."""
    model = llama_factory(variant, seed=12)
    geometry = HeadGeometry.of(model.config)
    plan = random_plan(geometry, seed=1)
    original_state = {k: v.clone() for k, v in model.state_dict().items()}

    baked = bake(model, plan)
    baked.save_pretrained(tmp_path)
    loaded, info = AutoModelForCausalLM.from_pretrained(tmp_path, output_loading_info=True)
    loaded.eval()
    assert not info["missing_keys"]
    assert not info["unexpected_keys"]
    assert not info["mismatched_keys"]
    assert loaded.config.attention_bias is True

    ids = _ids(1)
    with torch.no_grad():
        with add_to_heads(model, plan.add_tensor()):
            hooked = model(input_ids=ids).logits
        exported = loaded(input_ids=ids).logits
        base = model(input_ids=ids).logits
    torch.testing.assert_close(exported, hooked, rtol=0, atol=1e-4)
    assert (hooked - base).abs().max() > 1e-2  # the plan changes the output

    for layer in loaded.model.layers:
        attention = layer.self_attn
        for name in ("q_proj", "k_proj", "v_proj"):
            bias = getattr(attention, name).bias
            assert bias is not None
            assert torch.count_nonzero(bias) == 0
    # Layer 1 has one steered head, so its o_proj bias is W_O[:, slice] @ (α c v).
    d = geometry.head_dim
    index = HEADS.index((1, 0))
    w = model.model.layers[1].self_attn.o_proj.weight[:, 0:d]
    expected_bias = w @ (plan.alpha * plan.scales[index] * plan.vectors[index])
    torch.testing.assert_close(
        loaded.model.layers[1].self_attn.o_proj.bias, expected_bias, rtol=1e-5, atol=1e-6
    )

    # The base model is untouched: same config flag, no biases, same weights.
    assert not model.config.attention_bias
    assert model.model.layers[0].self_attn.o_proj.bias is None
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, original_state[key], rtol=0, atol=0)


def test_bake_float64_model(llama_factory, tmp_path):
    """bake works on the model's own dtype (here float64) and stays exact."""
    model = llama_factory("gqa_head_dim16", seed=13, dtype=torch.float64)
    plan = random_plan(HeadGeometry.of(model.config), seed=2)
    baked = bake(model, plan)
    ids = _ids(2)
    with torch.no_grad(), add_to_heads(model, plan.add_tensor()):
        hooked = model(input_ids=ids).logits
    with torch.no_grad():
        baked_logits = baked(input_ids=ids).logits
    torch.testing.assert_close(baked_logits, hooked, rtol=1e-6, atol=1e-6)


def test_bake_refuses_to_write_non_finite_weights(llama_factory):
    """A finite plan that overflows the weights when baked is an error, not a checkpoint."""
    model = llama_factory("gqa_head_dim16", seed=2)
    plan = random_plan(HeadGeometry.of(model.config))
    plan.alpha = 1e39  # finite as a Python float, inf once applied in fp32
    with pytest.raises(GcmEditError, match="NaN or inf"):
        bake(model, plan)


@torch.no_grad()
def _assert_steered_and_exact(model, loaded, plan: SteeringPlan, ids: torch.Tensor) -> None:
    """The reloaded export equals the hooked model (≤ 1e-4), which differs from the base."""
    with plan.apply(model):
        hooked = model(input_ids=ids).logits
    exported = loaded.eval()(input_ids=ids).logits
    torch.testing.assert_close(exported, hooked, rtol=0, atol=1e-4)
    assert (hooked - model(input_ids=ids).logits).abs().max() > 1e-2


def _mixed_plan(model) -> SteeringPlan:
    """Rank-1 heads alongside additive and scaled ones; (0, 1) is all three at once."""
    additive = random_plan(HeadGeometry.of(model.config), seed=2)
    return replace(
        rank1_plan(model, heads=[(0, 1), (1, 2), (2, 3)], seed=3),
        heads=additive.heads,
        vectors=additive.vectors,
        scales=additive.scales,
        scaled_heads=[(0, 1), (2, 0)],
        head_scales=[0.4, 2.5],
    )


@pytest.mark.parametrize("kind", ["rank1", "mixed"])
def test_bake_rank1_save_load_equals_hooked_model(llama_factory, variant, kind, tmp_path):
    """W_h ← s·W_h + (W_h α c δ) uᵀ, reloaded by plain transformers, is the hooked model."""
    model = llama_factory(variant, seed=14)
    plan = rank1_plan(model, seed=4) if kind == "rank1" else _mixed_plan(model)
    bake(model, plan).save_pretrained(tmp_path)
    loaded, info = AutoModelForCausalLM.from_pretrained(tmp_path, output_loading_info=True)
    assert not (info["missing_keys"] or info["unexpected_keys"] or info["mismatched_keys"])
    assert loaded.config.attention_bias is (kind == "mixed")  # rank-1 alone needs no bias
    _assert_steered_and_exact(model, loaded, plan, _ids(3))


def test_bake_rank1_weight_is_the_rank1_update(llama_factory):
    """Layer 1's only edit is head 2's rank-1 term: W_2 + (W_2 α c δ) uᵀ, other heads as is."""
    model = llama_factory("gqa_head_dim16", seed=15)
    plan = rank1_plan(model, heads=[(1, 2)], seed=5)
    baked = bake(model, plan)
    weight = model.model.layers[1].self_attn.o_proj.weight.double()
    head = weight[:, 32:48]
    push = plan.alpha * plan.rank1_scales[0] * plan.rank1_vectors[0].double()
    expected = weight.clone()
    expected[:, 32:48] += torch.outer(head @ push, plan.rank1_reads[0].double())
    got = baked.model.layers[1].self_attn.o_proj.weight
    torch.testing.assert_close(got, expected.float(), rtol=1e-6, atol=1e-7)
    assert baked.model.layers[1].self_attn.o_proj.bias is None
    for layer in (0, 2):
        torch.testing.assert_close(
            baked.model.layers[layer].self_attn.o_proj.weight,
            model.model.layers[layer].self_attn.o_proj.weight,
            rtol=0,
            atol=0,
        )


@pytest.mark.parametrize("model_type", ["qwen2", "mistral", "phi3"])
def test_rank1_bakes_natively_on_bias_less_families(model_type, tmp_path):
    """A rank-1-only plan is a pure W_O edit: no llamafy, the family's own class and config."""
    model = family_model(model_type, kv_heads=2, seed=4)
    plan = rank1_plan(model, seed=6)
    assert not needs_llamafy(model, plan)
    assert export_class(model, plan) == type(model).__name__
    bake(model, plan).save_pretrained(tmp_path)
    loaded, info = AutoModelForCausalLM.from_pretrained(tmp_path, output_loading_info=True)
    assert not (info["missing_keys"] or info["unexpected_keys"] or info["mismatched_keys"])
    assert type(loaded) is type(model)
    assert not getattr(loaded.config, "attention_bias", False)
    assert loaded.model.layers[0].self_attn.o_proj.bias is None
    _assert_steered_and_exact(model, loaded, plan, _ids(4))


def test_bake_copies_only_the_output_projections(llama_factory):
    """The baked model shares every tensor but o_proj's with the base (no second embedding),
    and writing the plan into its o_proj leaves the base's untouched."""
    model = llama_factory("gqa_head_dim16", seed=5)
    plan = _mixed_plan(model)  # additive, scaled and rank-1: biases and weights both change
    o_proj = {f"model.layers.{i}.self_attn.o_proj.weight" for i in range(3)}
    before = {name: p.clone() for name, p in model.named_parameters()}
    baked = bake(model, plan)
    base_tensors = dict(model.named_parameters())
    for name, p in baked.named_parameters():
        if name in o_proj:
            assert p.data_ptr() != base_tensors[name].data_ptr()
        elif name in base_tensors:
            assert p is base_tensors[name], name
        else:  # the biases the bake adds
            assert name.endswith(".bias")
    for name, p in model.named_parameters():
        torch.testing.assert_close(p, before[name], rtol=0, atol=0)
    assert not any(torch.equal(dict(baked.named_parameters())[n], before[n]) for n in o_proj)
