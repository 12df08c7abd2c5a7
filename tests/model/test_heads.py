"""Head sites: z is o_proj's input, and adding to one head's slice is W_O[:, slice] @ v."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from tiny import llama_config

from gcm_edit.model.heads import HeadGeometry, add_to_heads, edit_head_inputs, o_proj_modules


def _inputs(seed: int = 0, batch: int = 2, length: int = 7) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(4, 64, (batch, length), generator=g)


def test_geometry_uses_config_head_dim():
    """Qwen3/Gemma-style configs have head_dim != hidden/heads; the slices must follow head_dim."""
    geometry = HeadGeometry.of(llama_config("gqa_head_dim16"))
    assert (geometry.n_layers, geometry.n_heads, geometry.head_dim) == (3, 4, 16)
    assert geometry.n_total == 12
    assert geometry.head_slice(2) == slice(32, 48)


def test_geometry_falls_back_to_hidden_over_heads():
    """Configs without head_dim fall back to hidden_size // num_attention_heads."""
    config = SimpleNamespace(num_hidden_layers=2, num_attention_heads=4, hidden_size=32)
    assert HeadGeometry.of(config) == HeadGeometry(2, 4, 8)


def test_head_inputs_are_o_proj_inputs(llama_factory, variant):
    """o_proj(z) of the recorded z must be exactly the attention module's output."""
    model = llama_factory(variant, seed=1)
    geometry = HeadGeometry.of(model.config)
    recorded: dict[int, torch.Tensor] = {}
    attn_out: dict[int, torch.Tensor] = {}

    def record(layer, z):
        recorded[layer] = z.detach().clone()

    handles = [
        layer.self_attn.register_forward_hook(
            lambda _m, _a, out, i=i: attn_out.__setitem__(i, out[0].detach().clone())
        )
        for i, layer in enumerate(model.model.layers)
    ]
    try:
        with torch.no_grad(), edit_head_inputs(model, record):
            model(input_ids=_inputs())
    finally:
        for handle in handles:
            handle.remove()

    assert sorted(recorded) == list(range(geometry.n_layers))
    for i, layer in enumerate(model.model.layers):
        z = recorded[i]
        assert z.shape[-1] == geometry.n_heads * geometry.head_dim
        with torch.no_grad():
            torch.testing.assert_close(layer.self_attn.o_proj(z), attn_out[i])


def test_edit_hooks_are_removed(llama_factory):
    """After the context manager exits the model must be back to its unhooked behaviour."""
    model = llama_factory("gqa", seed=2)
    ids = _inputs(1)
    with torch.no_grad():
        before = model(input_ids=ids).logits
        with edit_head_inputs(model, lambda _l, z: z * 0):
            zeroed = model(input_ids=ids).logits
        after = model(input_ids=ids).logits
    assert not torch.allclose(before, zeroed)
    torch.testing.assert_close(after, before, rtol=0, atol=0)
    assert all(not p._forward_pre_hooks for p in o_proj_modules(model))


@pytest.mark.parametrize(("layer", "head"), [(0, 0), (1, 3), (2, 1)])
def test_add_to_one_head_matches_reference(llama_factory, variant, layer, head):
    """add_to_heads with v in head (l, h) == a hand-written hook adding W_O[:, h·d:(h+1)·d] @ v."""
    model = llama_factory(variant, seed=3)
    geometry = HeadGeometry.of(model.config)
    d = geometry.head_dim
    v = torch.randn(d, generator=torch.Generator().manual_seed(layer * 10 + head))
    add = torch.zeros(geometry.n_layers, geometry.n_heads * d)
    add[layer, head * d : (head + 1) * d] = v
    ids = _inputs(2)

    with torch.no_grad(), add_to_heads(model, add):
        steered = model(input_ids=ids).logits

    o_proj = model.model.layers[layer].self_attn.o_proj
    w_slice = o_proj.weight[:, head * d : (head + 1) * d].detach()
    handle = o_proj.register_forward_hook(lambda _m, _a, out: out + w_slice @ v)
    try:
        with torch.no_grad():
            reference = model(input_ids=ids).logits
    finally:
        handle.remove()
    with torch.no_grad():
        base = model(input_ids=ids).logits

    torch.testing.assert_close(steered, reference, rtol=1e-5, atol=1e-5)
    assert (steered - base).abs().max() > 1e-3  # the edit is not a no-op


def test_add_to_heads_casts_to_model_dtype(llama_factory):
    """A float32 steering tensor must work on a float64 model (the hook casts it)."""
    model = llama_factory("mha", seed=4, dtype=torch.float64)
    geometry = HeadGeometry.of(model.config)
    add = torch.randn(geometry.n_layers, geometry.n_heads * geometry.head_dim)
    with torch.no_grad(), add_to_heads(model, add):
        logits = model(input_ids=_inputs(3)).logits
    assert logits.dtype == torch.float64
