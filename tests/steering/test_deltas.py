"""Steering vectors δ against a plain per-sequence loop (no batching, no padding)."""

from __future__ import annotations

import pytest
import torch
from tiny import make_pairs

from gcm_edit.model.heads import HeadGeometry
from gcm_edit.steering.vectors import POSITIONS, steering_vectors

PAD = 1


@torch.no_grad()
def _mean_z(model, prompt: list[int], response: list[int], positions: str) -> torch.Tensor:
    """[L, H, d]: z of one unpadded sequence averaged over the chosen positions."""
    geometry = HeadGeometry.of(model.config)
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
    n_prompt, n_total = len(prompt), len(prompt) + len(response)
    chosen = {
        "prompt": slice(0, n_prompt),
        "response": slice(n_prompt, n_total),
        "all": slice(0, n_total),
    }[positions]
    z = torch.stack([captured[i] for i in range(geometry.n_layers)])  # [L, T, H*d]
    mean = z[:, chosen].double().mean(1)
    return mean.view(geometry.n_layers, geometry.n_heads, geometry.head_dim)


def reference_deltas(model, pairs, positions: str) -> torch.Tensor:
    contrast = torch.stack(
        [_mean_z(model, p.prompt_contrast, p.response_contrast, positions) for p in pairs]
    ).mean(0)
    original = torch.stack(
        [_mean_z(model, p.prompt_orig, p.response_orig, positions) for p in pairs]
    ).mean(0)
    return contrast - original


@pytest.mark.parametrize("batch_size", [1, 3])
def test_steering_vectors_match_per_sequence_loop(llama_factory, variant, batch_size):
    """Batched, right-padded δ equals the per-pair loop for prompt / response / all positions."""
    model = llama_factory(variant, seed=8)
    pairs = make_pairs(5, seed=6)
    lengths = {len(p.prompt_orig) + len(p.response_orig) for p in pairs}
    assert len(lengths) > 1, "sequences must differ in length so that padding is exercised"

    deltas = steering_vectors(model, pairs, PAD, batch_size=batch_size)
    geometry = HeadGeometry.of(model.config)
    assert set(deltas) == set(POSITIONS)
    for positions in POSITIONS:
        got = deltas[positions]
        assert got.shape == (geometry.n_layers, geometry.n_heads, geometry.head_dim)
        expected = reference_deltas(model, pairs, positions).float()
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5, msg=positions)


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
