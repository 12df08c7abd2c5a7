"""Learned per-head scales on a tiny random model: the loss falls, L1 prunes useless heads,
the Lagrange multiplier holds KL to its target, training starts from the warm start."""

from __future__ import annotations

import torch
from tiny import make_pairs

from gcm_edit.scoring.methods import score_heads
from gcm_edit.scoring.runtime import ScoringRuntime
from gcm_edit.steering.scales import ScaleObjective, learn_scales


def _objective(n_heads: int, **changes) -> ScaleObjective:
    values = dict(
        alpha=1.0,
        lambda_f=0.1,
        lambda_m=0.5,
        lr=0.05,
        steps=60,
        learn_head_scale=False,
        seed=0,
        kl_target=10.0,
        init_c=(1.0,) * n_heads,
        snapshot_every=20,
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

    result = learn_scales(model, tiny_tokenizer, pairs, heads, vectors, _objective(4), batch_size=3)

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
        model, tiny_tokenizer, pairs, heads, vectors, _objective(2, lambda_m=50.0, steps=5), 3
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
        _objective(2, learn_head_scale=True, lambda_m=0.0),
        3,
    )
    assert result.s is not None and any(s != 1.0 for s in result.s)


def test_snapshots_start_at_the_warm_start(llama_factory, tiny_tokenizer):
    """Step 0 is the warm start exactly (heads at 0 stay candidates), then every N steps."""
    model, pairs, deltas = _setup(llama_factory)
    heads = [(0, 1), (1, 2), (2, 3)]
    vectors = torch.stack([deltas[h] for h in heads])
    goal = _objective(3, init_c=(1.0, 0.0, 1.0), steps=10, snapshot_every=4, lambda_m=0.0)
    result = learn_scales(model, tiny_tokenizer, pairs, heads, vectors, goal, 3)
    assert [snap["step"] for snap in result.snapshots] == [0, 4, 8, 10]
    assert result.snapshots[0]["c"] == [1.0, 0.0, 1.0]
    assert result.snapshots[-1]["c"] == result.c != [1.0, 0.0, 1.0]


def test_multiplier_holds_kl_to_its_target(llama_factory, tiny_tokenizer):
    """A target below the warm start's KL raises λ and brings KL down to it; a loose one
    lowers λ and lets KL grow with the effect."""
    model, pairs, deltas = _setup(llama_factory)
    heads = [(0, 1), (1, 2), (2, 3)]
    vectors = torch.stack([deltas[h] for h in heads]) * 4
    start = learn_scales(
        model, tiny_tokenizer, pairs, heads, vectors, _objective(3, steps=1, lambda_m=0.0), 3
    ).history[0]["kl"]
    tight = _objective(3, kl_target=start / 4, steps=40, lambda_m=0.0, lambda_f=1.0)
    history = learn_scales(model, tiny_tokenizer, pairs, heads, vectors, tight, 3).history
    assert history[-1]["lambda"] > 1.0  # raised while KL was over the target
    assert history[-1]["kl"] < start / 2
    loose = _objective(3, kl_target=start * 100, steps=10, lambda_m=0.0, lambda_f=1.0)
    history = learn_scales(model, tiny_tokenizer, pairs, heads, vectors, loose, 3).history
    assert history[-1]["lambda"] < 0.01
