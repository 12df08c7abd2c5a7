"""Learned per-head scales on a tiny random model: the loss falls, L1 prunes useless heads."""

from __future__ import annotations

import torch
from tiny import make_pairs

from gcm_edit.scoring.methods import score_heads
from gcm_edit.scoring.runtime import ScoringRuntime
from gcm_edit.steering.scales import ScaleObjective, learn_scales


def _objective(**changes) -> ScaleObjective:
    values = dict(
        alpha=1.0, lambda_f=0.1, lambda_m=0.5, lr=0.05, steps=60, learn_head_scale=False, seed=0
    )
    return ScaleObjective(**{**values, **changes})


def _setup(llama_factory):
    model = llama_factory("gqa_head_dim16", seed=5)
    pairs = make_pairs(6, seed=3)
    deltas = torch.randn(3, 4, 16, generator=torch.Generator().manual_seed(11))
    return model, pairs, deltas


def test_loss_falls_and_irrelevant_heads_go_to_zero(llama_factory, tiny_tokenizer):
    """Heads whose δ is zero cannot help M and are pruned to exactly 0; useful heads stay."""
    model, pairs, deltas = _setup(llama_factory)
    scores = score_heads(model, pairs, deltas, 1, runtime=ScoringRuntime(batch_size=3))
    useful = [
        (i // 4, i % 4) for i in torch.argsort(scores.flatten(), descending=True)[:2].tolist()
    ]
    useless = [h for h in [(0, 0), (1, 1), (2, 2), (2, 0)] if h not in useful][:2]
    heads = useful + useless
    vectors = torch.stack([deltas[h] for h in useful] + [torch.zeros(16)] * len(useless))
    before = {k: v.clone() for k, v in model.state_dict().items()}

    result = learn_scales(model, tiny_tokenizer, pairs, heads, vectors, _objective(), batch_size=3)

    assert len(result.history) == 60
    first, last = result.history[0], result.history[-1]
    assert last["effectiveness"] < first["effectiveness"]  # M under steering went up
    assert last["loss"] < first["loss"]
    assert result.c[2:] == [0.0, 0.0]  # exactly zero: the proximal step, not a small number
    assert all(c != 0 for c in result.c[:2])  # (a sign may flip: AtP is only first-order)
    assert result.surviving == [0, 1]
    for key, value in model.state_dict().items():  # the model itself is never trained
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)


def test_strong_l1_prunes_everything(llama_factory, tiny_tokenizer):
    model, pairs, deltas = _setup(llama_factory)
    heads = [(0, 1), (2, 3)]
    vectors = torch.stack([deltas[h] for h in heads])
    result = learn_scales(
        model, tiny_tokenizer, pairs, heads, vectors, _objective(lambda_m=50.0, steps=5), 3
    )
    assert result.c == [0.0, 0.0] and result.surviving == []


def test_head_scales_are_learned_too(llama_factory, tiny_tokenizer):
    model, pairs, deltas = _setup(llama_factory)
    heads = [(1, 0), (2, 1)]
    vectors = torch.stack([deltas[h] for h in heads])
    result = learn_scales(
        model,
        tiny_tokenizer,
        pairs,
        heads,
        vectors,
        _objective(learn_head_scale=True, lambda_m=0.0),
        3,
    )
    assert result.s is not None and any(s != 1.0 for s in result.s)
