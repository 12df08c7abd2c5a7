"""Rank-1 heads in a plan: the hooked edit equals the hand-written one, round trips, pushes."""

from __future__ import annotations

import hashlib
import json
from contextlib import contextmanager
from dataclasses import replace

import pytest
import torch
from safetensors.torch import save_file
from tiny import random_plan, rank1_plan

from gcm_edit.checkpoint.manifest import HeadRow
from gcm_edit.errors import GcmEditError
from gcm_edit.model.heads import HeadGeometry
from gcm_edit.steering.plan import PLAN_TENSORS, SteeringPlan


def _add_plan(p: SteeringPlan, layer: int, z, out, g: HeadGeometry) -> None:
    """Plan `p`'s additions in `layer`: α·c·δ, and α·c·δ·(uᵀz) reading the unedited z."""
    for (at, head), v, c in zip(p.heads, p.vectors, p.scales, strict=True):
        if at == layer:
            out[..., g.head_slice(head)] += p.alpha * c * v
    rank1 = zip(p.rank1_heads, p.rank1_vectors, p.rank1_reads, p.rank1_scales, strict=True)
    for (at, head), v, u, c in rank1:
        if at == layer:
            activity = (z[..., g.head_slice(head)] * u).sum(-1, keepdim=True)
            out[..., g.head_slice(head)] += p.alpha * c * v * activity


@contextmanager
def hand_hooks(model, plans: list[SteeringPlan]):
    """The documented edit written out head by head, on o_proj's input in every layer:
    z ← Πs ⊙ z + Σ α·c·δ + Σ α·c·δ·(uᵀz), u reading the unedited z."""
    g = HeadGeometry.of(model.config)

    def hook(layer: int, z: torch.Tensor) -> torch.Tensor:
        out = z.clone()
        for p in plans:
            for (at, head), s in zip(p.scaled_heads, p.head_scales, strict=True):
                if at == layer:
                    out[..., g.head_slice(head)] *= s
        for p in plans:
            _add_plan(p, layer, z, out, g)
        return out

    handles = [
        layer.self_attn.o_proj.register_forward_pre_hook(lambda _m, args, i=i: (hook(i, args[0]),))
        for i, layer in enumerate(model.model.layers)
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _logits(model, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids).logits


IDS = torch.randint(4, 64, (2, 9), generator=torch.Generator().manual_seed(3))


def test_rank1_hook_equals_hand_written_edit(llama_factory, variant):
    """plan.apply adds α·c·δ·(uᵀz) to each rank-1 head, nothing else."""
    model = llama_factory(variant, seed=4)
    plan = rank1_plan(model)
    with plan.apply(model):
        hooked = _logits(model, IDS)
    with hand_hooks(model, [plan]):
        expected = _logits(model, IDS)
    torch.testing.assert_close(hooked, expected, rtol=0, atol=1e-5)
    assert (hooked - _logits(model, IDS)).abs().max() > 1e-2  # the edit is not a no-op


def test_rank1_push_follows_the_heads_activity(llama_factory):
    """On o_proj itself: z_h = t·z̄_h gets t·α·c·δ (uᵀz̄ = 1); z_h ⊥ u gets nothing."""
    model = llama_factory("gqa_head_dim16", seed=5)
    plan = rank1_plan(model, heads=[(1, 2)])
    g = plan.geometry
    o_proj = model.model.layers[1].self_attn.o_proj
    u = plan.rank1_reads[0]
    push = plan.alpha * plan.rank1_scales[0] * plan.rank1_vectors[0]
    mean = u / u.norm() ** 2  # z̄ = u/‖u‖², since u = z̄/‖z̄‖²
    z = torch.randn(3, g.n_heads * g.head_dim, generator=torch.Generator().manual_seed(1))
    silent = z.clone()
    silent[:, g.head_slice(2)] -= (silent[:, g.head_slice(2)] @ u)[:, None] * u / u.norm() ** 2
    typical = z.clone()
    typical[:, g.head_slice(2)] = torch.tensor([[0.0], [1.0], [-2.5]]) * mean
    expected = typical.clone()
    expected[:, g.head_slice(2)] += torch.tensor([[0.0], [1.0], [-2.5]]) * push
    with torch.no_grad():
        with plan.apply(model):
            steered_silent, steered_typical = o_proj(silent), o_proj(typical)
        torch.testing.assert_close(steered_silent, o_proj(silent), rtol=0, atol=1e-6)
        torch.testing.assert_close(steered_typical, o_proj(expected), rtol=0, atol=1e-5)


def test_plan_from_scores_rank1_reads_the_mean_output():
    """rank1 plans read u = z̄/‖z̄‖² (uᵀz̄ = 1) of each selected head; silent heads refuse."""
    scores = torch.tensor([[0.0, 5.0, 1.0], [3.0, -1.0, 0.5]])
    deltas, means = torch.randn(2, 3, 4), torch.randn(2, 3, 4)
    plan = SteeringPlan.from_scores(scores, deltas, 34.0, 2.0, "rank1", means)
    assert plan.heads == [] and plan.scaled_heads == []
    assert plan.rank1_heads == [(0, 1), (1, 0), (0, 2)]
    assert plan.rank1_scales == [1.0, 1.0, 1.0]
    torch.testing.assert_close(plan.rank1_vectors, deltas[[0, 1, 0], [1, 0, 2]])
    mean = means[[0, 1, 0], [1, 0, 2]]
    torch.testing.assert_close(plan.rank1_reads, mean / mean.norm(dim=-1, keepdim=True) ** 2)
    torch.testing.assert_close((plan.rank1_reads * mean).sum(-1), torch.ones(3))
    means[1, 0] = 0.0
    with pytest.raises(GcmEditError, match="L1.H0 is silent"):
        SteeringPlan.from_scores(scores, deltas, 34.0, 2.0, "rank1", means)
    with pytest.raises(ValueError, match="mean head outputs"):
        SteeringPlan.from_scores(scores, deltas, 34.0, 2.0, "rank1")


def _mixed_plan(model) -> SteeringPlan:
    """Additive, scaled and rank-1 heads, (0, 1) all three at once."""
    additive = random_plan(HeadGeometry.of(model.config), seed=2)
    rank1 = rank1_plan(model, heads=[(0, 1), (1, 2), (2, 3)], seed=3)
    return replace(
        rank1,
        heads=additive.heads,
        vectors=additive.vectors,
        scales=additive.scales,
        scaled_heads=[(0, 1), (2, 0)],
        head_scales=[0.4, 2.5],
    )


def test_plan_save_load_round_trip_with_rank1_heads(llama_factory, tmp_path):
    model = llama_factory("mha", seed=6)
    plan = _mixed_plan(model)
    plan.save(tmp_path)
    loaded = SteeringPlan.load(tmp_path)
    assert loaded.rank1_heads == plan.rank1_heads
    assert all(isinstance(h, tuple) for h in loaded.rank1_heads)
    assert loaded.rank1_scales == plan.rank1_scales
    torch.testing.assert_close(loaded.rank1_vectors, plan.rank1_vectors, rtol=0, atol=0)
    torch.testing.assert_close(loaded.rank1_reads, plan.rank1_reads, rtol=0, atol=0)
    assert loaded.fingerprint() == plan.fingerprint()
    assert loaded.describe() == plan.describe()
    with loaded.apply(model):
        reloaded = _logits(model, IDS)
    with hand_hooks(model, [plan]):
        torch.testing.assert_close(reloaded, _logits(model, IDS), rtol=0, atol=1e-5)


def test_plan_files_without_rank1_fields_still_load(tmp_path):
    """A plan saved before rank-1 steering existed (no rank1 tensors or keys) loads as before."""
    geometry = HeadGeometry(3, 4, 16)
    plan = random_plan(geometry, seed=7)
    save_file({"vectors": plan.vectors.contiguous()}, str(tmp_path / PLAN_TENSORS))
    meta = {
        "geometry": vars(geometry),
        "heads": plan.heads,
        "alpha": plan.alpha,
        "scales": plan.scales,
        "scaled_heads": [],
        "head_scales": [],
    }
    (tmp_path / "gcm_edit_plan.json").write_text(json.dumps(meta))
    loaded = SteeringPlan.load(tmp_path)
    assert loaded.rank1_heads == [] and loaded.rank1_scales == []
    assert loaded.rank1_vectors.shape == loaded.rank1_reads.shape == (0, 16)
    assert loaded.fingerprint() == plan.fingerprint()


def test_fingerprint_keeps_old_keys_and_tells_rank1_plans_apart(llama_factory):
    """Without rank-1 heads the fingerprint is the old one (cached answers stay valid); any
    change to a rank-1 head's δ, u, c or place changes it."""
    geometry = HeadGeometry(3, 4, 16)
    plan = random_plan(geometry, seed=8)
    plan.scaled_heads, plan.head_scales = [(1, 1)], [0.5]
    old = hashlib.sha256(plan.add_tensor().numpy().tobytes())
    old.update(plan.scale_tensor().numpy().tobytes())
    assert plan.fingerprint() == old.hexdigest()[:16]

    rank1 = rank1_plan(llama_factory("gqa_head_dim16", seed=9))
    variants = [
        replace(rank1, rank1_vectors=rank1.rank1_vectors * 1.01),
        replace(rank1, rank1_reads=rank1.rank1_reads * 1.01),
        replace(rank1, rank1_scales=[2 * c for c in rank1.rank1_scales]),
        replace(rank1, rank1_heads=[(2, 1), *rank1.rank1_heads[1:]]),
        replace(rank1, alpha=rank1.alpha * 1.01),
        replace(rank1, rank1_heads=[], rank1_vectors=None, rank1_reads=None, rank1_scales=[]),
    ]
    fingerprints = {p.fingerprint() for p in [rank1, *variants]}
    assert len(fingerprints) == len(variants) + 1


def test_composed_plan_with_rank1_heads_equals_the_hand_written_edits(llama_factory):
    """compose sums rank-1 edits (α folded into c), alongside additions and head scales."""
    model = llama_factory("gqa_head_dim16", seed=10)
    p1 = _mixed_plan(model)
    p2 = rank1_plan(model, heads=[(0, 1), (2, 2)], alpha=0.5, seed=11)
    composed = SteeringPlan.compose([p1, p2])
    assert composed.alpha == 1.0
    assert composed.rank1_heads == p1.rank1_heads + p2.rank1_heads
    assert composed.rank1_scales == pytest.approx(
        [p.alpha * c for p in (p1, p2) for c in p.rank1_scales]
    )
    assert composed.steered_heads == sorted(
        set(p1.heads) | {(2, 0), (1, 2), (2, 3), (0, 1), (2, 2)}
    )
    with composed.apply(model):
        hooked = _logits(model, IDS)
    with hand_hooks(model, [p1, p2]):
        torch.testing.assert_close(hooked, _logits(model, IDS), rtol=0, atol=1e-5)


def test_describe_lists_rank1_heads_and_pushes_only_additive_ones(llama_factory):
    model = llama_factory("gqa_head_dim16", seed=12)
    plan = _mixed_plan(model)
    rows = plan.describe(torch.ones(3, 4))
    rank1_rows = [row for row in rows if "rank1_scale" in row]
    assert [(r["layer"], r["head"]) for r in rank1_rows] == plan.rank1_heads
    assert [r["rank1_scale"] for r in rank1_rows] == plan.rank1_scales
    assert [r["delta_norm"] for r in rank1_rows] == pytest.approx(
        plan.rank1_vectors.norm(dim=-1).tolist()
    )
    assert len(plan.pushes(torch.ones(3, 4))) == len(plan.heads)
    assert sum("push" in row for row in rows) == len(plan.heads)
    for row in rows:
        HeadRow(**row, score=0.0)  # the manifest accepts every row


@pytest.mark.parametrize("field", ["rank1_vectors", "rank1_reads", "rank1_scales"])
def test_rank1_plan_with_nan_is_refused(llama_factory, field):
    plan = rank1_plan(llama_factory("gqa_head_dim16", seed=13))
    bad = float("nan")
    value = [bad] * 5 if field == "rank1_scales" else torch.full_like(plan.rank1_reads, bad)
    with pytest.raises(GcmEditError, match="NaN or inf"):
        replace(plan, **{field: value})
