"""Attribution patching (Lightning) against exact activation patching written from scratch."""

from __future__ import annotations

import csv

import pytest
import torch
from references import distillation_loss, exact_effects, metric, response_logprobs
from tiny import make_pairs

from gcm_edit.model.heads import HeadGeometry
from gcm_edit.scoring.methods import score_heads
from gcm_edit.scoring.metric import collate_pairs, mediation_metric
from gcm_edit.scoring.runtime import ScoringRuntime
from gcm_edit.scoring.table import plot_heatmap, read_scores_csv, write_scores_csv

PAD = 1


def attribution_scores(model, pairs, deltas, pad_id: int, batch_size: int) -> torch.Tensor:
    runtime = ScoringRuntime(batch_size=batch_size)
    return score_heads(model, pairs, deltas, pad_id, "attribution", runtime)


def exact_patching(model, pairs, deltas: torch.Tensor, eps: float) -> torch.Tensor:
    """IE[l,h] = (1/N) Σ_pairs M(z[l,h,:] += eps·δ[l,h]) − M(), by explicit o_proj pre-hooks."""
    return exact_effects(model, pairs, lambda layer, head, z: z + eps * deltas[layer, head].to(z))


@pytest.fixture
def scoring_setup(llama_factory):
    model = llama_factory("gqa_head_dim16", seed=5, dtype=torch.float64)
    geometry = HeadGeometry.of(model.config)
    g = torch.Generator().manual_seed(11)
    deltas = torch.randn(geometry.n_layers, geometry.n_heads, geometry.head_dim, generator=g)
    return model, make_pairs(5, seed=3), deltas


def test_attribution_matches_exact_patching_first_order(scoring_setup):
    """ε·s must equal the exact effect of adding ε·δ to the head (first order, float64 model).

    This is the whole claim of the scoring stage: s is the linearisation of the intervention
    that is later baked.
    """
    model, pairs, deltas = scoring_setup
    scores = attribution_scores(model, pairs, deltas, pad_id=PAD, batch_size=2)
    assert scores.shape == (3, 4)

    eps = 1e-3
    effects = exact_patching(model, pairs, deltas, eps)
    scale = effects.abs().max()
    assert scale > 1e-5, "degenerate setup: no head has any effect"
    torch.testing.assert_close(eps * scores.double(), effects, rtol=0, atol=float(1e-2 * scale))

    # The tolerance shrinks with ε: at 10x larger ε the error is visibly larger, so the
    # comparison above is sensitive to more than the sign pattern.
    big = 3e-2
    big_effects = exact_patching(model, pairs, deltas, big)
    err_small = (eps * scores.double() - effects).abs().max() / scale
    err_big = (big * scores.double() - big_effects).abs().max() / big_effects.abs().max()
    assert err_small < err_big


def test_distillation_attribution_is_the_first_order_drop_of_the_loss(scoring_setup):
    """−ε·s equals the exact change of the distillation loss when ε·δ is added to one head of
    the student only (the teacher stays the unpatched model asked with the contrast prompt)."""
    model, pairs, deltas = scoring_setup
    runtime = ScoringRuntime(batch_size=2)
    scores = score_heads(model, pairs, deltas, PAD, "distillation", runtime)
    with torch.no_grad():
        teachers = {
            p.question: response_logprobs(model, p.prompt_contrast, p.response_contrast)
            for p in pairs
        }

    def loss(model, pair):
        return distillation_loss(model, pair, teachers[pair.question])

    eps = 1e-3
    patch = lambda layer, head, z: z + eps * deltas[layer, head].to(z)  # noqa: E731
    effects = exact_effects(model, pairs, patch, loss)
    scale = effects.abs().max()
    assert scale > 1e-6, "degenerate setup: no head moves the loss"
    torch.testing.assert_close(-eps * scores.double(), effects, rtol=0, atol=float(1e-2 * scale))
    # independent of batching: right padding never leaks into the loss
    one = score_heads(model, pairs, deltas, PAD, "distillation", ScoringRuntime(batch_size=1))
    torch.testing.assert_close(one, scores, rtol=1e-5, atol=1e-6)


def test_attribution_is_linear_in_delta(scoring_setup):
    """Scores are ∇M·δ: scaling δ by c scales every score by c (per-head dot product)."""
    model, pairs, deltas = scoring_setup
    base = attribution_scores(model, pairs, deltas, pad_id=PAD, batch_size=5)
    scaled = attribution_scores(model, pairs, -2.5 * deltas, pad_id=PAD, batch_size=5)
    torch.testing.assert_close(scaled, -2.5 * base, rtol=1e-5, atol=1e-6)


def test_attribution_independent_of_batch_size(scoring_setup):
    """Right padding must not leak into the scores: batch size 1 and 3 agree."""
    model, pairs, deltas = scoring_setup
    one = attribution_scores(model, pairs, deltas, pad_id=PAD, batch_size=1)
    three = attribution_scores(model, pairs, deltas, pad_id=PAD, batch_size=3)
    torch.testing.assert_close(one, three, rtol=1e-5, atol=1e-6)


def test_attribution_float32_model(llama_factory):
    """The default fp32 path agrees with the float64 model's scores (same weights)."""
    model32 = llama_factory("mha", seed=6)
    model64 = llama_factory("mha", seed=6, dtype=torch.float64)
    pairs = make_pairs(3, seed=4)
    deltas = torch.randn(3, 4, 12, generator=torch.Generator().manual_seed(2))
    s32 = attribution_scores(model32, pairs, deltas, pad_id=PAD, batch_size=2)
    s64 = attribution_scores(model64, pairs, deltas, pad_id=PAD, batch_size=2)
    torch.testing.assert_close(s32, s64, rtol=1e-4, atol=1e-5)


def test_mediation_metric_matches_reference(llama_factory):
    """mediation_metric on a padded batch equals per-pair unpadded logprob differences."""
    model = llama_factory("gqa", seed=7, dtype=torch.float64)
    pairs = make_pairs(4, seed=5)
    with torch.no_grad():
        batched = mediation_metric(model, collate_pairs(pairs, PAD))[0]
        reference = torch.stack([metric(model, p) for p in pairs])
    torch.testing.assert_close(batched.double(), reference, rtol=1e-5, atol=1e-5)


def test_scores_csv_round_trip(tmp_path):
    """scores.csv is what the export ships and what a warm re-run reads back."""
    scores = torch.randn(3, 5, generator=torch.Generator().manual_seed(0))
    path = tmp_path / "sub" / "scores.csv"
    write_scores_csv(scores, path)
    with open(path) as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["layer", "head", "score"]
    assert len(rows) == 1 + 15
    torch.testing.assert_close(read_scores_csv(path), scores, rtol=1e-7, atol=0)


def test_plot_heatmap_writes_png(tmp_path):
    """The heatmap is part of every export; it must be a real PNG file."""
    scores = torch.randn(4, 3)
    path = tmp_path / "plots" / "scores.png"
    plot_heatmap(scores, [(0, 1), (3, 2)], path, "tiny")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    plot_heatmap(torch.zeros(2, 2), [], tmp_path / "zeros.png", "all zero scores")
    assert (tmp_path / "zeros.png").stat().st_size > 0


def _model_state(model) -> tuple:
    return (
        {p.device for p in model.parameters()},
        {p.dtype for p in model.parameters()},
        model.training,
        [p.requires_grad for p in model.parameters()],
    )


def test_attribution_leaves_model_as_it_was(llama_factory):
    """Scoring runs inside a Lightning Trainer; the caller's model must come back unchanged."""
    model = llama_factory("gqa", seed=7)
    model.requires_grad_(False)
    before = _model_state(model)
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    attribution_scores(model, make_pairs(2), torch.randn(3, 4, 12), pad_id=PAD, batch_size=2)
    assert _model_state(model) == before
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, weights[key], rtol=0, atol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_attribution_keeps_cuda_model_on_cuda(llama_factory):
    """The pipeline keeps using run.model on its device after scoring (e.g. steered answers).

    Lightning's Strategy.teardown() calls `lightning_module.cpu()`, which would move the
    wrapped base model to the CPU behind the pipeline's back.
    """
    model = llama_factory("gqa", seed=7).cuda()
    attribution_scores(model, make_pairs(2), torch.randn(3, 4, 12), pad_id=PAD, batch_size=2)
    assert {p.device.type for p in model.parameters()} == {"cuda"}
