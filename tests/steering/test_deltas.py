"""Steering vectors δ against a plain per-sequence loop (no batching, no padding)."""

from __future__ import annotations

import pytest
import torch
from tiny import make_pairs

from gcm_edit.model.heads import HeadGeometry
from gcm_edit.steering.vectors import HEAD_NORM, POSITIONS, original_key, steering_vectors

PAD = 1


@torch.no_grad()
def _z(model, prompt: list[int], response: list[int]) -> torch.Tensor:
    """[L, T, H*d]: every layer's o_proj input for one unpadded sequence."""
    captured: dict[int, torch.Tensor] = {}
    handles = [
        layer.self_attn.o_proj.register_forward_pre_hook(
            lambda _m, args, i=i: captured.__setitem__(i, args[0][0].detach().clone())
        )
        for i, layer in enumerate(model.model.layers)
    ]
    try:
        model(input_ids=torch.tensor([prompt + response]))
    finally:
        for handle in handles:
            handle.remove()
    return torch.stack([captured[i] for i in range(len(captured))])


def _mean_z(model, prompt: list[int], response: list[int], positions: str) -> torch.Tensor:
    """[L, H, d]: z of one unpadded sequence averaged over the chosen positions."""
    geometry = HeadGeometry.of(model.config)
    n_prompt, n_total = len(prompt), len(prompt) + len(response)
    chosen = {
        "prompt": slice(0, n_prompt),
        "response": slice(n_prompt, n_total),
        "all": slice(0, n_total),
    }[positions]
    mean = _z(model, prompt, response)[:, chosen].double().mean(1)
    return mean.view(geometry.n_layers, geometry.n_heads, geometry.head_dim)


def reference_original(model, pairs, positions: str) -> torch.Tensor:
    return torch.stack(
        [_mean_z(model, p.prompt_orig, p.response_orig, positions) for p in pairs]
    ).mean(0)


def reference_deltas(model, pairs, positions: str) -> torch.Tensor:
    contrast = torch.stack(
        [_mean_z(model, p.prompt_contrast, p.response_contrast, positions) for p in pairs]
    ).mean(0)
    return contrast - reference_original(model, pairs, positions)


def reference_head_norm(model, pairs) -> torch.Tensor:
    """[L, H]: per original sequence, ‖z‖ of each head averaged over its positions; then mean."""
    g = HeadGeometry.of(model.config)
    per_sequence = [
        _z(model, p.prompt_orig, p.response_orig)
        .double()
        .view(g.n_layers, -1, g.n_heads, g.head_dim)
        .norm(dim=-1)
        .mean(1)
        for p in pairs
    ]
    return torch.stack(per_sequence).mean(0)


@pytest.mark.parametrize("batch_size", [1, 3])
def test_steering_vectors_match_per_sequence_loop(llama_factory, variant, batch_size):
    """Batched, right-padded δ (and the original runs' mean z) equals the per-pair loop for
    prompt / response / all positions."""
    model = llama_factory(variant, seed=8)
    pairs = make_pairs(5, seed=6)
    lengths = {len(p.prompt_orig) + len(p.response_orig) for p in pairs}
    assert len(lengths) > 1, "sequences must differ in length so that padding is exercised"

    deltas = steering_vectors(model, pairs, PAD, batch_size=batch_size)
    geometry = HeadGeometry.of(model.config)
    assert set(deltas) == {*POSITIONS, *map(original_key, POSITIONS), HEAD_NORM}
    expected_norm = reference_head_norm(model, pairs).float()
    torch.testing.assert_close(deltas[HEAD_NORM], expected_norm, rtol=1e-4, atol=1e-5)
    for positions in POSITIONS:
        got = deltas[positions]
        assert got.shape == (geometry.n_layers, geometry.n_heads, geometry.head_dim)
        expected = reference_deltas(model, pairs, positions).float()
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5, msg=positions)
        original = reference_original(model, pairs, positions).float()
        got = deltas[original_key(positions)]
        torch.testing.assert_close(got, original, rtol=1e-4, atol=1e-5, msg=positions)


def test_positions_modes_differ(llama_factory):
    """Each positions mode really averages different positions (guards against a mask mix-up)."""
    model = llama_factory("gqa", seed=9)
    deltas = steering_vectors(model, make_pairs(4, seed=7), PAD, batch_size=2)
    assert not torch.allclose(deltas["prompt"], deltas["response"])
    assert not torch.allclose(deltas["all"], deltas["response"])
    assert not torch.allclose(deltas["all"], deltas["prompt"])


def test_identical_sides_give_zero_delta(llama_factory):
    """If contrast and original runs are the same sequences, δ is exactly zero."""
    model = llama_factory("mha", seed=10)
    pairs = make_pairs(3, seed=8)
    for p in pairs:
        p.prompt_contrast, p.response_contrast = p.prompt_orig, p.response_orig
    deltas = steering_vectors(model, pairs, PAD, batch_size=2)
    for positions in POSITIONS:
        assert torch.count_nonzero(deltas[positions]) == 0
