"""Every scoring method against a from-scratch reference (float64 tiny models)."""

from __future__ import annotations

import pytest
import torch
from ddp_worker import aligned_pairs
from references import exact_effects, positionwise_effects, record_z
from tiny import make_pairs

from gcm_edit.errors import GcmEditError
from gcm_edit.model.heads import o_proj_modules
from gcm_edit.model.logistic import fit_logistic
from gcm_edit.scoring import probe as probe_module
from gcm_edit.scoring.methods import METHODS, score_heads
from gcm_edit.scoring.probe import cross_validated_accuracy
from gcm_edit.scoring.runtime import ScoringRuntime

PAD = 1


def scores(model, pairs, deltas=None, method="attribution", **runtime) -> torch.Tensor:
    return score_heads(model, pairs, deltas, PAD, method, ScoringRuntime(**runtime))


@pytest.fixture
def model64(llama_factory):
    return llama_factory("gqa_head_dim16", seed=5, dtype=torch.float64)


@pytest.fixture
def deltas64() -> torch.Tensor:
    return torch.randn(3, 4, 16, generator=torch.Generator().manual_seed(11), dtype=torch.float64)


@pytest.mark.parametrize("head_batch", [1, 5, 12])
def test_activation_equals_exact_patching(model64, deltas64, head_batch):
    """Batched over heads and pairs, M(z += δ) − M() equals one-head-at-a-time patching."""
    pairs = make_pairs(5, seed=3)
    got = scores(model64, pairs, deltas64, method="activation", batch_size=2, head_batch=head_batch)
    want = exact_effects(model64, pairs, lambda layer, head, z: z + deltas64[layer, head])
    assert want.abs().max() > 1e-3
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-6)


def test_knockout_equals_zero_ablation(model64):
    pairs = make_pairs(4, seed=8)
    got = scores(model64, pairs, method="knockout", batch_size=3, head_batch=4)
    want = -exact_effects(model64, pairs, lambda _layer, _head, z: torch.zeros_like(z))
    assert want.abs().max() > 1e-3
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-6)


def test_attribution_approximates_activation(model64, deltas64):
    """At small δ the exact effect is linear, so AtP and activation patching agree."""
    pairs = make_pairs(4, seed=2)
    eps = 1e-4
    atp = scores(model64, pairs, eps * deltas64, method="attribution", batch_size=2)
    exact = scores(model64, pairs, eps * deltas64, method="activation", batch_size=2)
    torch.testing.assert_close(atp, exact, rtol=0, atol=float(1e-3 * exact.abs().max()))


def test_paper_matches_positionwise_patching_first_order(model64):
    """ε·s equals the exact effect of moving each position's z a step ε toward the contrast run."""
    pairs = aligned_pairs()[:3]
    got = scores(model64, pairs, method="paper", batch_size=2).double()
    eps = 1e-3
    want = positionwise_effects(model64, pairs, eps)
    scale = want.abs().max()
    assert scale > 1e-6
    torch.testing.assert_close(eps * got, want, rtol=0, atol=float(1e-2 * scale))


def test_paper_refuses_unaligned_prompts(model64):
    pairs = make_pairs(3, seed=3)
    assert any(len(p.prompt_orig) != len(p.prompt_contrast) for p in pairs)
    with pytest.raises(GcmEditError, match="equal token length") as info:
        scores(model64, pairs, method="paper")
    assert "\n" not in str(info.value)


def test_random_is_seeded(model64):
    pairs = make_pairs(2)
    a = scores(model64, pairs, method="random", seed=3)
    assert a.shape == (3, 4)
    torch.testing.assert_close(a, scores(model64, pairs, method="random", seed=3))
    assert not torch.equal(a, scores(model64, pairs, method="random", seed=4))


def test_probe_features_are_final_token_head_outputs(model64, monkeypatch):
    """Probe samples: last-token z of p_orig⊕r_orig (label 0) and p_contrast⊕r_contrast (1)."""
    pairs = make_pairs(4, seed=6)
    seen = {}

    def capture(features, folds=5, seed=0):
        seen["features"] = features
        return torch.zeros(features.shape[2], dtype=torch.float64)

    monkeypatch.setattr(probe_module, "cross_validated_accuracy", capture)
    scores(model64, pairs, method="probe", batch_size=3)
    features = seen["features"]  # [pairs, 2, heads, d]
    for i, pair in enumerate(pairs):
        for side, ids in enumerate(
            (pair.prompt_orig + pair.response_orig, pair.prompt_contrast + pair.response_contrast)
        ):
            final = torch.stack([z[-1] for z in record_z(model64, ids)])  # [L, H*d]
            torch.testing.assert_close(features[i, side].reshape(3, -1), final.double())


def test_fit_logistic_reaches_the_ridge_optimum():
    """Newton's answer has zero gradient of the ridge objective (checked with autograd)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 40, 5, generator=g, dtype=torch.float64)
    y = (torch.rand(40, generator=g) > 0.5).double()
    w = fit_logistic(x, y, l2=0.5).requires_grad_(True)
    xb = torch.cat([x, torch.ones(3, 40, 1, dtype=x.dtype)], -1)
    logits = torch.einsum("knd,kd->kn", xb, w)
    loss = (
        torch.nn.functional.binary_cross_entropy_with_logits(
            logits, y.expand_as(logits), reduction="sum"
        )
        + 0.25 * (w[:, :-1] ** 2).sum()
    )
    (grad,) = torch.autograd.grad(loss, w)
    assert grad.abs().max() < 1e-8


def test_probe_accuracy_separates_informative_heads():
    """Head 0 carries the label on one coordinate, head 1 is noise: 100% vs about chance."""
    g = torch.Generator().manual_seed(1)
    n, d = 30, 8
    features = torch.randn(n, 2, 2, d, generator=g, dtype=torch.float64)
    features[:, 1, 0, 3] += 6.0  # contrast side of head 0 shifted far along one axis
    score = cross_validated_accuracy(features, seed=0)
    assert score[0] >= 1.0
    assert 0.2 < score[1] < 0.8
    assert score[0] - 1.0 < 1 / (2 * n)  # the tie-breaker stays below one sample of accuracy


@pytest.mark.parametrize("frozen", [False, True], ids=["trainable", "frozen"])
def test_activation_checkpointing_recomputes_and_changes_nothing(model64, deltas64, frozen):
    """Same scores, and each o_proj hook fires twice per step (forward + recomputation).
    Frozen, as a loaded model is: then only the probe needs a gradient, so the recomputation
    must still see it (it once ran after the probe was removed and saved nothing)."""
    model64.requires_grad_(not frozen)
    pairs = make_pairs(3, seed=9)
    calls = {"n": 0}

    def count(_m, _args):
        calls["n"] += 1

    handle = o_proj_modules(model64)[0].register_forward_pre_hook(count)
    try:
        plain = scores(
            model64,
            pairs,
            deltas64,
            method="attribution",
            batch_size=3,
            activation_checkpointing=False,
        )
        plain_calls, calls["n"] = calls["n"], 0
        ckpt = scores(
            model64,
            pairs,
            deltas64,
            method="attribution",
            batch_size=3,
            activation_checkpointing=True,
        )
    finally:
        handle.remove()
    assert (plain_calls, calls["n"]) == (1, 2)
    torch.testing.assert_close(ckpt, plain, rtol=1e-7, atol=1e-9)
    assert "forward" not in vars(model64.model.layers[0])  # the wrapper is removed again


def test_bf16_mixed_precision_keeps_the_ranking(llama_factory):
    """bf16 autocast (what GPUs use by default) changes scores only slightly."""
    model = llama_factory("mha", seed=6)
    pairs = make_pairs(4, seed=4)
    deltas = torch.randn(3, 4, 12, generator=torch.Generator().manual_seed(2))
    full = scores(model, pairs, deltas, method="attribution", precision="32-true")
    half = scores(model, pairs, deltas, method="attribution", precision="bf16-mixed")
    assert not torch.equal(full, half)  # autocast really ran
    torch.testing.assert_close(half, full, rtol=0.1, atol=float(0.05 * full.abs().max()))
    assert {p.dtype for p in model.parameters()} == {torch.float32}


def test_every_method_has_a_spec():
    from typing import get_args

    from gcm_edit.commands.settings import Method

    assert set(METHODS) == set(get_args(Method))
