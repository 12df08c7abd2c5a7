"""The CAA baseline: the residual mean difference against a naive per-pair reference, and
its plan writes exactly c·v into the layer's o_proj output, hooked and baked alike."""

from __future__ import annotations

import torch
from tiny import make_pairs

from gcm_edit.checkpoint.bake import bake
from gcm_edit.model.heads import o_proj_modules
from gcm_edit.steering.residual import residual_plan, residual_vectors


def test_residual_vectors_match_a_per_pair_reference(llama_factory):
    model = llama_factory("mha", seed=2)
    pairs = make_pairs(5, seed=4)
    vectors = residual_vectors(model, pairs, 1, batch_size=2)

    def mean_state(prompt: list[int], response: list[int]) -> torch.Tensor:
        ids = torch.tensor([prompt + response])
        with torch.no_grad():
            states = model(ids, output_hidden_states=True).hidden_states[1:]
        return torch.stack([s[0, len(prompt) :].mean(0) for s in states[: len(vectors)]])

    reference = sum(
        mean_state(p.prompt_contrast, p.response_contrast)
        - mean_state(p.prompt_orig, p.response_orig)
        for p in pairs
    ) / len(pairs)
    torch.testing.assert_close(vectors, reference, atol=1e-5, rtol=1e-4)


def test_residual_plan_adds_exactly_the_vector(llama_factory):
    model = llama_factory("mha", seed=3)  # 4 heads x 12 = hidden 48: W_O is square
    vector = torch.randn(48, generator=torch.Generator().manual_seed(1))
    plan = residual_plan(model, 1, vector, 2.5)
    assert plan.steered_heads == [(1, h) for h in range(4)]
    baked = bake(model, plan)
    torch.testing.assert_close(o_proj_modules(baked)[1].bias, 2.5 * vector, atol=1e-4, rtol=1e-4)
    ids = torch.tensor([[5, 9, 12, 30, 7]])
    with torch.no_grad(), plan.apply(model):
        hooked = model(ids).logits
    with torch.no_grad():
        torch.testing.assert_close(baked(ids).logits, hooked, atol=1e-5, rtol=1e-5)
