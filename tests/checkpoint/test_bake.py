"""Baking: the saved checkpoint, loaded by plain transformers, is the hooked steered model."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM

from gcm_edit.checkpoint.bake import bake
from gcm_edit.checkpoint.verify import verify_export
from gcm_edit.errors import GcmEditError
from gcm_edit.model.heads import HeadGeometry, add_to_heads
from gcm_edit.steering.plan import SteeringPlan, n_selected, select_heads

HEADS = [(0, 1), (0, 3), (1, 0), (2, 2), (2, 3)]  # several heads, two layers with two heads


def random_plan(geometry: HeadGeometry, seed: int = 0) -> SteeringPlan:
    g = torch.Generator().manual_seed(seed)
    vectors = torch.randn(len(HEADS), geometry.head_dim, generator=g)
    scales = (0.5 + torch.rand(len(HEADS), generator=g)).tolist()
    return SteeringPlan(geometry, list(HEADS), vectors, alpha=1.7, scales=scales)


def _ids(seed: int = 0) -> torch.Tensor:
    return torch.randint(4, 64, (2, 9), generator=torch.Generator().manual_seed(seed))


def test_plan_add_tensor_layout():
    """add_tensor puts α·c·v in the (layer, head) slice and nowhere else."""
    geometry = HeadGeometry(3, 4, 16)
    plan = random_plan(geometry)
    add = plan.add_tensor()
    expected = torch.zeros(3, 4, 16)
    for (layer, head), v, c in zip(plan.heads, plan.vectors, plan.scales, strict=True):
        expected[layer, head] = plan.alpha * c * v
    torch.testing.assert_close(add, expected.view(3, 64))


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


def _export(model, plan, tokenizer, folder):
    baked = bake(model, plan)
    baked.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def _prompts(tokenizer) -> list[list[int]]:
    from gcm_edit.inputs.prompts import chat_messages, encode_prompt

    return [
        encode_prompt(tokenizer, chat_messages(q, None, "original"))
        for q in ("Why is the sky blue?", "How do plants grow?")
    ]


def test_verify_export_passes_on_correct_export(llama_factory, tiny_tokenizer, tmp_path):
    """A faithful export passes verification with a tiny logit difference."""
    model = llama_factory("gqa_head_dim16", seed=14)
    plan = random_plan(HeadGeometry.of(model.config), seed=3)
    _export(model, plan, tiny_tokenizer, tmp_path)
    result = verify_export(tmp_path, model, plan, _prompts(tiny_tokenizer), 8)
    assert result.max_abs_logit_diff <= 1e-4
    assert result.greedy_identical
    assert result.n_prompts == 2


def test_verify_export_with_shipped_decoding(llama_factory, tiny_tokenizer, tmp_path):
    """A faithful export that ships its decoding (as `export` does) must still verify.

    `export` writes generation_config.json with no_repeat_ngram_size=3; the greedy comparison
    must decode both sides alike, not the export with its shipped settings and the hooked base
    model with its own.
    """
    from transformers import GenerationConfig

    model = llama_factory("gqa_head_dim16", seed=14)
    plan = random_plan(HeadGeometry.of(model.config), seed=3)
    baked = bake(model, plan)
    baked.generation_config = GenerationConfig(
        bos_token_id=2, eos_token_id=3, pad_token_id=1, do_sample=False, no_repeat_ngram_size=3
    )
    baked.save_pretrained(tmp_path)
    tiny_tokenizer.save_pretrained(tmp_path)
    result = verify_export(tmp_path, model, plan, _prompts(tiny_tokenizer), 24)
    assert result.greedy_identical


def test_verify_export_rejects_corrupted_bias(llama_factory, tiny_tokenizer, tmp_path):
    """Corrupting one o_proj bias entry in the saved weights must fail verification."""
    model = llama_factory("gqa_head_dim16", seed=14)
    plan = random_plan(HeadGeometry.of(model.config), seed=3)
    _export(model, plan, tiny_tokenizer, tmp_path)
    weights_path = tmp_path / "model.safetensors"
    weights = load_file(str(weights_path))
    key = "model.layers.1.self_attn.o_proj.bias"
    assert key in weights
    weights[key][5] += 1.0
    save_file(weights, str(weights_path), metadata={"format": "pt"})
    with pytest.raises(GcmEditError, match="verification failed"):
        verify_export(tmp_path, model, plan, _prompts(tiny_tokenizer), 8)


def test_verify_export_rejects_unsteered_model(llama_factory, tiny_tokenizer, tmp_path):
    """Exporting the base model (plan forgotten) must not pass as the steered model."""
    model = llama_factory("mha", seed=15)
    plan = random_plan(HeadGeometry.of(model.config), seed=4)
    empty = SteeringPlan(plan.geometry, [], torch.zeros(0, plan.geometry.head_dim), 1.0, [])
    _export(model, empty, tiny_tokenizer, tmp_path)
    with pytest.raises(GcmEditError):
        verify_export(tmp_path, model, plan, _prompts(tiny_tokenizer), 8)


def test_verify_export_rejects_missing_keys(llama_factory, tiny_tokenizer, tmp_path):
    """A checkpoint whose config promises biases that are not saved must not pass."""
    model = llama_factory("gqa", seed=16)
    plan = random_plan(HeadGeometry.of(model.config), seed=4)
    broken = llama_factory("gqa", seed=16)
    broken.config.attention_bias = True  # config says biases, weights have none
    broken.save_pretrained(tmp_path)
    with pytest.raises(GcmEditError, match="does not load cleanly"):
        verify_export(tmp_path, model, plan, _prompts(tiny_tokenizer), 8)


def test_plan_save_load_round_trip(tmp_path):
    """The plan saved with an export rebuilds the same hooked model."""
    geometry = HeadGeometry(3, 4, 16)
    plan = random_plan(geometry, seed=5)
    plan.save(tmp_path)
    loaded = SteeringPlan.load(tmp_path)
    assert loaded.geometry == geometry
    assert loaded.heads == plan.heads
    assert all(isinstance(h, tuple) for h in loaded.heads)
    assert loaded.alpha == plan.alpha
    assert loaded.scales == plan.scales
    torch.testing.assert_close(loaded.vectors, plan.vectors, rtol=0, atol=0)
    torch.testing.assert_close(loaded.add_tensor(), plan.add_tensor(), rtol=0, atol=0)
    assert loaded.fingerprint() == plan.fingerprint()
    assert loaded.describe() == plan.describe()


def test_select_heads_top_k_by_signed_score():
    """Ranking is by signed score: a large negative score is never selected."""
    scores = torch.tensor(
        [
            [0.1, -9.0, 0.5, 0.0],
            [2.0, 0.3, -0.2, 1.5],
            [0.7, -3.0, 0.05, 0.9],
        ]
    )
    assert select_heads(scores, 25.0) == [(1, 0), (1, 3), (2, 3)]  # 25% of 12 = 3
    assert select_heads(scores, 1.0) == [(1, 0)]  # at least one head
    assert len(select_heads(scores, 100.0)) == 12
    assert select_heads(scores, 100.0)[-1] == (0, 1)


def test_plan_from_scores_takes_selected_deltas():
    """from_scores pairs each selected head with its own δ vector, scale 1."""
    geometry = HeadGeometry(2, 3, 4)
    scores = torch.tensor([[0.0, 5.0, 1.0], [3.0, -1.0, 0.5]])
    deltas = torch.randn(2, 3, 4)
    plan = SteeringPlan.from_scores(scores, deltas, geometry, k_percent=34.0, alpha=2.0)
    assert plan.heads == [(0, 1), (1, 0), (0, 2)]  # ceil(6 * 0.34) = 3
    expected = torch.stack([deltas[0, 1], deltas[1, 0], deltas[0, 2]])
    torch.testing.assert_close(plan.vectors, expected)
    assert plan.scales == [1.0, 1.0, 1.0]
    assert plan.alpha == 2.0


@pytest.mark.parametrize(
    ("n_total", "k", "expected"),
    [
        (270, 5.0, 14),  # 13.5 rounds up
        (270, 10.0, 27),
        (100, 5.0, 5),  # exact, no spurious extra head
        (375, 8.8, 33),  # 375 * 8.8 / 100 = 33.00000000000001 in floating point
        (12, 1.0, 1),  # never zero heads
        (12, 100.0, 12),
    ],
)
def test_n_selected_rounding(n_total, k, expected):
    """k% of heads rounds up, never to zero, and is robust to float noise."""
    assert n_selected(n_total, k) == expected


def test_composed_plan_equals_summed_hooks(llama_factory):
    """compose(p1, p2) hooks == additions summed and scales multiplied; and it bakes exactly."""
    from gcm_edit.checkpoint.bake import bake
    from gcm_edit.model.heads import intervene

    model = llama_factory("gqa_head_dim16", seed=2)
    g = HeadGeometry.of(model.config)
    gen = torch.Generator().manual_seed(4)
    p1 = SteeringPlan(g, [(0, 1), (2, 2)], torch.randn(2, 16, generator=gen), 1.5, [1.0, 0.5])
    p2 = SteeringPlan(g, [(0, 1), (1, 3)], torch.randn(2, 16, generator=gen), 3.0, [1.0, 1.0])
    p2.scaled_heads, p2.head_scales = [(2, 0)], [0.3]
    composed = SteeringPlan.compose([p1, p2])
    ids = torch.randint(4, 64, (2, 9), generator=gen)
    scale = p2.scale_tensor()
    with torch.no_grad():
        with intervene(model, add=p1.add_tensor() + p2.add_tensor(), scale=scale):
            summed = model(input_ids=ids).logits
        with composed.apply(model):
            hooked = model(input_ids=ids).logits
        baked = bake(model, composed)(input_ids=ids).logits
    torch.testing.assert_close(hooked, summed, rtol=0, atol=1e-6)
    torch.testing.assert_close(baked, hooked, rtol=0, atol=1e-4)
    assert composed.alpha == 1.0 and composed.scales == [1.5, 0.75, 3.0, 3.0]
