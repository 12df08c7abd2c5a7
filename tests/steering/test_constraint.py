"""The neutral-KL constraint against one unpadded prompt at a time through the model's own
head: it keeps only hidden states, and projects the reference for the prompts a step uses."""

from __future__ import annotations

import pytest
import torch
from tiny import family_model, make_llama, random_plan

from gcm_edit.model.heads import HeadGeometry
from gcm_edit.steering.constraint import NeutralKL, base_continuations

CPU = torch.device("cpu")


def _reference(model, plan, neutral: NeutralKL, rows: list[int]) -> torch.Tensor:
    """KL(base ‖ steered) per token over `rows`, each prompt alone and unpadded, in float64."""
    total, tokens = torch.zeros((), dtype=torch.float64), 0
    for i in rows:
        ids = neutral.batch.input_ids[i][neutral.batch.attention_mask[i].bool()][None]
        with torch.no_grad():
            base = torch.log_softmax(model(ids).logits.double(), -1)
            with plan.apply(model):
                steered = torch.log_softmax(model(ids).logits.double(), -1)
        total += (base.exp() * (base - steered)).sum()
        tokens += ids.shape[1]
    return total / tokens


@pytest.mark.parametrize(
    ("model_type", "continued"), [("llama", False), ("gemma2", False), ("llama", True)]
)
def test_neutral_kl_matches_unpadded_reference(model_type, continued, tiny_tokenizer):
    """Over the prompts, or the prompts followed by the base model's own continuations (the
    reference then runs each prompt ⊕ continuation alone)."""
    # gemma2 soft-caps its logits in its head: the projected reference must do the same
    model = make_llama(seed=3) if model_type == "llama" else family_model(model_type, 1, seed=3)
    if model_type == "gemma2":
        model.config.final_logit_softcapping = 0.5
    continuations = base_continuations(model, tiny_tokenizer) if continued else None
    neutral = NeutralKL(tiny_tokenizer, 1.0, 1.0, continuations)
    if continued:  # every continuation token is held
        prompts_alone = NeutralKL(tiny_tokenizer, 1.0, 1.0).batch.attention_mask.sum()
        extra = sum(len(c) for c in continuations)
        assert extra > 0 and neutral.batch.attention_mask.sum() == prompts_alone + extra
    neutral.start(model, CPU)
    assert neutral.base.shape[-1] == model.config.hidden_size  # no vocabulary-wide tensor held
    plan = random_plan(HeadGeometry.of(model.config))
    rows = [3, 0, 7]
    with torch.no_grad(), plan.apply(model):
        some = neutral.kl(model, CPU, torch.tensor(rows))
        every = neutral.kl(model, CPU)
    want_some = _reference(model, plan, neutral, rows)
    want_every = _reference(model, plan, neutral, list(range(len(neutral.batch.input_ids))))
    torch.testing.assert_close(some.double(), want_some, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(every.double(), want_every, rtol=1e-5, atol=1e-7)
    assert want_some > 1e-4  # the plan does move the distributions


def test_neutral_kl_is_zero_unedited_and_differentiable(tiny_tokenizer):
    model = make_llama(seed=3)
    neutral = NeutralKL(tiny_tokenizer, 1.0, 1.0)
    neutral.start(model, CPU)
    assert float(neutral.kl(model, CPU).detach().abs()) < 1e-6
    plan = random_plan(HeadGeometry.of(model.config))
    with plan.apply(model):
        neutral.kl(model, CPU, torch.tensor([1, 2])).backward()
    assert model.model.embed_tokens.weight.grad.abs().sum() > 0
