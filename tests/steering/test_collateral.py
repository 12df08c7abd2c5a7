"""Collateral cost per head and the collateral-aware ranking, on tiny random models."""

from __future__ import annotations

import pytest
import torch

from gcm_edit.evaluation.retention import measure_retention
from gcm_edit.steering.collateral import head_collateral, ranking
from gcm_edit.steering.plan import SteeringPlan, select_heads


def test_collateral_is_the_retention_kl_of_the_head_alone(llama_factory, tiny_tokenizer):
    """κ[l,h] equals the KL that retention reports for the one-head plan (its own code path:
    continuations appended, double precision), for every head measured; 0 elsewhere."""
    model = llama_factory("gqa_head_dim16", seed=2)
    deltas = torch.randn(3, 4, 16, generator=torch.Generator().manual_seed(4))
    heads = [(0, 2), (1, 0), (2, 3)]

    def one_head(head):
        return SteeringPlan.for_heads([head], deltas, 2.0)

    cost = head_collateral(model, tiny_tokenizer, heads, one_head, batch_size=5)
    for head in heads:
        reference = measure_retention(model, tiny_tokenizer, one_head(head), batch_size=7).kl
        torch.testing.assert_close(float(cost[head]), reference, rtol=1e-4, atol=1e-7)
        assert cost[head] > 0
    unmeasured = torch.ones_like(cost, dtype=torch.bool)
    for head in heads:
        unmeasured[head] = False
    assert (cost[unmeasured] == 0).all()


def test_effect_per_kl_ranks_cheap_carriers_first():
    scores = torch.tensor([[4.0, 1.0, -2.0], [2.0, 0.0, 3.0]])
    cost = torch.tensor([[16.0, 0.01, 1.0], [1.0, 1.0, 9.0]])
    assert torch.equal(ranking(scores, cost, "effect"), scores)
    # ratios: 1, 10, –, 2, –, 1 → (0,1) first, then (1,0); non-positive scores rank last
    ratio = ranking(scores, cost, "effect-per-kl")
    assert select_heads(ratio, 50.0)[:2] == [(0, 1), (1, 0)]
    assert ratio[0, 2] == -torch.inf and ratio[1, 1] == -torch.inf
    torch.testing.assert_close(ratio[1, 2], torch.tensor(1.0))
    unmeasured = cost.clone()
    unmeasured[0, 1] = 0.0  # outside the pool: ranks last despite its score
    assert ranking(scores, unmeasured, "effect-per-kl")[0, 1] == -torch.inf
    with pytest.raises(ValueError, match="collateral"):
        ranking(scores, None, "effect-per-kl")
