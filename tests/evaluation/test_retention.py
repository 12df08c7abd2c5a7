"""Retention: KL(base ‖ steered) on the shipped neutral prompts, and neutral-text perplexity."""

from __future__ import annotations

import pytest
import torch

from gcm_edit.evaluation.retention import base_continuations, measure_retention
from gcm_edit.inputs.neutral import neutral_material
from gcm_edit.inputs.prompts import bare_prompts
from gcm_edit.model.heads import HeadGeometry
from gcm_edit.steering.plan import SteeringPlan


def _kl_reference(base, steered, tokenizer) -> float:
    """Σ over every position of every neutral prompt of KL(base ‖ steered), / positions."""
    prompts, _ = neutral_material()
    total, count = 0.0, 0
    with torch.no_grad():
        for ids in bare_prompts(tokenizer, list(prompts)):
            x = torch.tensor([ids])
            p = torch.log_softmax(base(input_ids=x).logits[0].double(), -1)
            q = torch.log_softmax(steered(input_ids=x).logits[0].double(), -1)
            total += float(torch.nn.functional.kl_div(q, p, log_target=True, reduction="sum"))
            count += len(ids)
    return total / count


def test_neutral_material_ships_with_the_package():
    prompts, text = neutral_material()
    assert len(prompts) >= 20 and len(set(prompts)) == len(prompts)
    assert len(text.split()) >= 50


def test_unsteered_kl_is_zero(llama_factory, tiny_tokenizer):
    model = llama_factory("gqa", seed=1)
    result = measure_retention(model, tiny_tokenizer)
    assert result.kl == result.kl_first_token == result.kl_on_policy == 0.0
    assert result.neutral_ppl_base == result.neutral_ppl_steered


def _kl_on_continuations(base, steered, tokenizer, continuations) -> tuple[float, float]:
    """(mean KL at the first answer position, mean KL over every continuation position),
    one unpadded sequence at a time."""
    prompts, _ = neutral_material()
    first, total, count = 0.0, 0.0, 0
    with torch.no_grad():
        for ids, rest in zip(bare_prompts(tokenizer, list(prompts)), continuations, strict=True):
            x = torch.tensor([ids + rest])
            p = torch.log_softmax(base(input_ids=x).logits[0].double(), -1)
            q = torch.log_softmax(steered(input_ids=x).logits[0].double(), -1)
            kl = (p.exp() * (p - q)).sum(-1)  # [T]: at each next-token position
            predicting = kl[len(ids) - 1 : len(ids) - 1 + len(rest)]
            first += float(predicting[0])
            total += float(predicting.sum())
            count += len(rest)
    return first / len(continuations), total / count


def test_kl_of_another_model_matches_reference(llama_factory, tiny_tokenizer):
    base, other = llama_factory("gqa", seed=1), llama_factory("gqa", seed=2)
    result = measure_retention(base, tiny_tokenizer, steered_model=other, batch_size=5)
    assert result.kl > 0
    assert result.kl == pytest.approx(_kl_reference(base, other, tiny_tokenizer), rel=1e-6)
    assert result.neutral_ppl_base != result.neutral_ppl_steered
    continuations = base_continuations(base, tiny_tokenizer)
    first, on_policy = _kl_on_continuations(base, other, tiny_tokenizer, continuations)
    assert result.kl_first_token == pytest.approx(first, rel=1e-6)
    assert result.kl_on_policy == pytest.approx(on_policy, rel=1e-6)
    assert result.kl_first_token > 0 and result.kl_on_policy > 0


def test_steering_plan_kl_is_positive_and_grows_with_alpha(llama_factory, tiny_tokenizer):
    model = llama_factory("gqa_head_dim16", seed=3)
    geometry = HeadGeometry.of(model.config)
    vectors = torch.randn(2, geometry.head_dim, generator=torch.Generator().manual_seed(0))
    kls = []
    for alpha in (0.5, 2.0):
        plan = SteeringPlan(geometry, [(0, 1), (2, 3)], vectors, alpha, [1.0, 1.0])
        kls.append(measure_retention(model, tiny_tokenizer, plan).kl)
    assert 0 < kls[0] < kls[1]
