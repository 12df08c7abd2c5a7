"""Exact export for every supported decoder family (DESIGN.md §4).

For each family a tiny random model from its config class, a random plan over several heads
in several layers, bake → save → reload with plain transformers → logits equal the hooked
model. Additive plans on bias-less families come back as LlamaForCausalLM.
"""

from __future__ import annotations

import pytest
import torch
import transformers as T
from tiny import FAMILIES, family_model

from gcm_edit.checkpoint.bake import bake, export_class
from gcm_edit.checkpoint.llamafy import llama_config
from gcm_edit.checkpoint.verify import verify_export
from gcm_edit.errors import GcmEditError
from gcm_edit.model.architectures import ARCHITECTURES, arch_spec, window_limit
from gcm_edit.model.heads import HeadGeometry
from gcm_edit.steering.plan import SteeringPlan

PROMPTS = [[1, 5, 7, 9, 3, 4, 8, 11, 12], [2, 3, 4, 20]]


def random_plan(geometry: HeadGeometry, intervention: str, seed: int = 1) -> SteeringPlan:
    g = torch.Generator().manual_seed(seed)
    heads = [(0, 1), (1, 3), (2, 0), (2, 2)]
    empty = torch.zeros(0, geometry.head_dim)
    if intervention == "scale":
        scales = (torch.rand(len(heads), generator=g) * 3).tolist()
        return SteeringPlan(geometry, [], empty, 1.0, [], heads, scales)
    if intervention == "rank1":  # random reads: exactness does not depend on them
        vectors, reads = torch.randn(2, len(heads), geometry.head_dim, generator=g)
        return SteeringPlan(
            geometry,
            [],
            empty,
            1.7,
            [],
            rank1_heads=heads,
            rank1_vectors=vectors,
            rank1_reads=reads / geometry.head_dim,
            rank1_scales=(torch.rand(len(heads), generator=g) + 0.5).tolist(),
        )
    vectors = torch.randn(len(heads), geometry.head_dim, generator=g)
    scales = (torch.rand(len(heads), generator=g) + 0.5).tolist()
    return SteeringPlan(geometry, heads, vectors, 1.7, scales, [(1, 0)], [0.4])


def test_table_covers_the_documented_families():
    assert set(FAMILIES) == set(ARCHITECTURES)


@pytest.mark.parametrize("intervention", ["additive", "scale", "rank1"])
@pytest.mark.parametrize("kv_heads", [2, 4], ids=["gqa", "mha"])
@pytest.mark.parametrize("model_type", sorted(FAMILIES))
def test_baked_reload_equals_hooked(model_type, kv_heads, intervention, tmp_path):
    model = family_model(model_type, kv_heads)
    plan = random_plan(HeadGeometry.of(model.config), intervention)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    baked = bake(model, plan)
    baked.save_pretrained(tmp_path)

    reloaded, info = T.AutoModelForCausalLM.from_pretrained(tmp_path, output_loading_info=True)
    assert not (info["missing_keys"] or info["unexpected_keys"] or info["mismatched_keys"])
    assert type(reloaded).__name__ == export_class(model, plan)
    if intervention != "additive":  # a pure weight edit: same class, no config change
        assert type(reloaded) is type(model)
        assert not getattr(reloaded.config, "attention_bias", False)
    else:
        assert reloaded.config.attention_bias is True
    ids = torch.tensor([PROMPTS[0]])
    with torch.no_grad(), plan.apply(model):
        hooked = model(input_ids=ids).logits
    with torch.no_grad():
        exported = reloaded.eval()(input_ids=ids).logits
    torch.testing.assert_close(exported, hooked, atol=1e-5, rtol=0)
    with torch.no_grad():
        assert (hooked - model(input_ids=ids).logits).abs().max() > 1e-3  # it steers at all
    for name, tensor in model.state_dict().items():  # the base model is left untouched
        torch.testing.assert_close(tensor, before[name], atol=0, rtol=0)


@pytest.mark.parametrize("model_type", ["qwen2", "mistral", "phi3"])
def test_llamafied_steering_is_not_a_no_op(model_type):
    """Guards the test above: the plan must actually change the logits."""
    model = family_model(model_type, 2)
    plan = random_plan(HeadGeometry.of(model.config), "additive")
    ids = torch.tensor([PROMPTS[0]])
    with torch.no_grad():
        base = model(input_ids=ids).logits
        steered = bake(model, plan)(input_ids=ids).logits
    assert (steered - base).abs().max() > 1e-2


def test_native_bake_writes_zero_qkv_biases():
    model = family_model("qwen3", 2)
    baked = bake(model, random_plan(HeadGeometry.of(model.config), "additive"))
    attention = baked.model.layers[1].self_attn
    for name in ("q_proj", "k_proj", "v_proj"):
        assert torch.count_nonzero(getattr(attention, name).bias) == 0
    assert torch.count_nonzero(attention.o_proj.bias) > 0


def test_qwen2_keeps_its_real_qkv_biases():
    model = family_model("qwen2", 2)
    baked = bake(model, random_plan(HeadGeometry.of(model.config), "additive"))
    original = model.model.layers[0].self_attn.q_proj.bias
    torch.testing.assert_close(baked.model.layers[0].self_attn.q_proj.bias, original)


def test_phi3_partial_rotary_is_refused():
    model = family_model("phi3", 2)
    model.config.rope_parameters = {**model.config.rope_parameters, "partial_rotary_factor": 0.5}
    with pytest.raises(GcmEditError, match="partial_rotary_factor"):
        llama_config(model.config)


def test_window_limits():
    """A sliding window survives natively; a llamafied Mistral is exact only up to it."""
    assert window_limit(family_model("mistral", 2).config) == 64
    assert window_limit(family_model("gemma2", 2).config) is None  # native: the window is kept
    assert window_limit(family_model("qwen2", 2).config) is None  # use_sliding_window is off


def test_unsupported_architecture_names_the_supported_ones():
    config = T.GPT2Config(n_layer=1, n_head=2, n_embd=8, vocab_size=16)
    with pytest.raises(GcmEditError, match="not supported; supported: gemma, gemma2"):
        arch_spec(config)


@pytest.mark.parametrize("model_type", ["llama", "phi3"])
def test_verify_export_in_a_fresh_process(model_type, tmp_path):
    """The verifier loads the folder in a separate interpreter and compares with the hooks."""
    model = family_model(model_type, 2)
    plan = random_plan(HeadGeometry.of(model.config), "additive")
    bake(model, plan).save_pretrained(tmp_path)
    result = verify_export(tmp_path, model, plan, PROMPTS, greedy_tokens=4)
    assert result.max_abs_logit_diff <= 1e-4 and result.greedy_identical

    wrong = SteeringPlan(
        plan.geometry,
        plan.heads,
        plan.vectors,
        plan.alpha * 1.01,
        plan.scales,
        plan.scaled_heads,
        plan.head_scales,
    )
    with pytest.raises(GcmEditError, match="verification failed"):
        verify_export(tmp_path, model, wrong, PROMPTS, greedy_tokens=4)
