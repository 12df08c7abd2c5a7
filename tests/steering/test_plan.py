"""SteeringPlan: selection, the add/scale tensors, save/load, composition, pushes."""

from __future__ import annotations

import pytest
import torch
from tiny import random_plan

from gcm_edit.errors import GcmEditError
from gcm_edit.model.heads import HeadGeometry
from gcm_edit.steering.plan import SteeringPlan, n_selected, select_heads


def test_plan_add_tensor_layout():
    """add_tensor puts α·c·v in the (layer, head) slice and nowhere else."""
    geometry = HeadGeometry(3, 4, 16)
    plan = random_plan(geometry)
    add = plan.add_tensor()
    expected = torch.zeros(3, 4, 16)
    for (layer, head), v, c in zip(plan.heads, plan.vectors, plan.scales, strict=True):
        expected[layer, head] = plan.alpha * c * v
    torch.testing.assert_close(add, expected.view(3, 64))


def test_plan_save_load_round_trip(tmp_path):
    """The plan saved with an export rebuilds the same hooked model."""
    geometry = HeadGeometry(3, 4, 16)
    plan = random_plan(geometry, seed=5)
    plan.save(tmp_path)
    loaded = SteeringPlan.load(tmp_path)
    assert loaded.geometry == geometry
    assert loaded.heads == plan.heads
    assert all(isinstance(h, tuple) for h in loaded.heads)
    assert loaded.alpha == plan.alpha
    assert loaded.scales == plan.scales
    torch.testing.assert_close(loaded.vectors, plan.vectors, rtol=0, atol=0)
    torch.testing.assert_close(loaded.add_tensor(), plan.add_tensor(), rtol=0, atol=0)
    assert loaded.fingerprint() == plan.fingerprint()
    assert loaded.describe() == plan.describe()


def test_select_heads_top_k_by_signed_score():
    """Ranking is by signed score: a large negative score is never selected."""
    scores = torch.tensor(
        [
            [0.1, -9.0, 0.5, 0.0],
            [2.0, 0.3, -0.2, 1.5],
            [0.7, -3.0, 0.05, 0.9],
        ]
    )
    assert select_heads(scores, 25.0) == [(1, 0), (1, 3), (2, 3)]  # 25% of 12 = 3
    assert select_heads(scores, 1.0) == [(1, 0)]  # at least one head
    assert len(select_heads(scores, 100.0)) == 12
    assert select_heads(scores, 100.0)[-1] == (0, 1)


def test_plan_from_scores_takes_selected_deltas():
    """from_scores pairs each selected head with its own δ vector, scale 1."""
    scores = torch.tensor([[0.0, 5.0, 1.0], [3.0, -1.0, 0.5]])
    deltas = torch.randn(2, 3, 4)
    plan = SteeringPlan.from_scores(scores, deltas, k_percent=34.0, alpha=2.0)
    assert plan.geometry == HeadGeometry(2, 3, 4)
    assert plan.heads == [(0, 1), (1, 0), (0, 2)]  # ceil(6 * 0.34) = 3
    expected = torch.stack([deltas[0, 1], deltas[1, 0], deltas[0, 2]])
    torch.testing.assert_close(plan.vectors, expected)
    assert plan.scales == [1.0, 1.0, 1.0]
    assert plan.alpha == 2.0


@pytest.mark.parametrize(
    ("n_total", "k", "expected"),
    [
        (270, 5.0, 14),  # 13.5 rounds up
        (270, 10.0, 27),
        (100, 5.0, 5),  # exact, no spurious extra head
        (375, 8.8, 33),  # 375 * 8.8 / 100 = 33.00000000000001 in floating point
        (12, 1.0, 1),  # never zero heads
        (12, 100.0, 12),
    ],
)
def test_n_selected_rounding(n_total, k, expected):
    """k% of heads rounds up, never to zero, and is robust to float noise."""
    assert n_selected(n_total, k) == expected


def test_composed_plan_equals_summed_hooks(llama_factory):
    """compose(p1, p2) hooks == additions summed and scales multiplied; and it bakes exactly."""
    from gcm_edit.checkpoint.bake import bake
    from gcm_edit.model.heads import intervene

    model = llama_factory("gqa_head_dim16", seed=2)
    g = HeadGeometry.of(model.config)
    gen = torch.Generator().manual_seed(4)
    p1 = SteeringPlan(g, [(0, 1), (2, 2)], torch.randn(2, 16, generator=gen), 1.5, [1.0, 0.5])
    p2 = SteeringPlan(g, [(0, 1), (1, 3)], torch.randn(2, 16, generator=gen), 3.0, [1.0, 1.0])
    p2.scaled_heads, p2.head_scales = [(2, 0)], [0.3]
    composed = SteeringPlan.compose([p1, p2])
    ids = torch.randint(4, 64, (2, 9), generator=gen)
    scale = p2.scale_tensor()
    with torch.no_grad():
        with intervene(model, add=p1.add_tensor() + p2.add_tensor(), scale=scale):
            summed = model(input_ids=ids).logits
        with composed.apply(model):
            hooked = model(input_ids=ids).logits
        baked = bake(model, composed)(input_ids=ids).logits
    torch.testing.assert_close(hooked, summed, rtol=0, atol=1e-6)
    torch.testing.assert_close(baked, hooked, rtol=0, atol=1e-4)
    assert composed.alpha == 1.0 and composed.scales == [1.5, 0.75, 3.0, 3.0]


@pytest.mark.parametrize("field", ["alpha", "vectors", "scales"])
def test_plan_with_nan_or_inf_is_refused(field):
    """A plan carrying NaN or inf never exists, so nothing can be baked from it."""
    geometry = HeadGeometry(3, 4, 16)
    good = random_plan(geometry)
    bad = {
        "alpha": dict(alpha=float("inf")),
        "vectors": dict(vectors=torch.full_like(good.vectors, float("nan"))),
        "scales": dict(scales=[float("nan")] * len(good.scales)),
    }[field]
    kwargs = dict(
        geometry=geometry, heads=good.heads, vectors=good.vectors, alpha=1.0, scales=good.scales
    )
    with pytest.raises(GcmEditError, match="NaN or inf"):
        SteeringPlan(**{**kwargs, **bad})


def test_pushes_compare_steering_with_the_heads_own_norm():
    """push = |α·c|·‖δ‖ / E‖z‖ of that head."""
    geometry = HeadGeometry(3, 4, 16)
    plan = random_plan(geometry)
    head_norm = torch.full((3, 4), 2.0)
    expected = [
        abs(plan.alpha * c) * float(v.norm()) / 2.0
        for v, c in zip(plan.vectors, plan.scales, strict=True)
    ]
    assert plan.pushes(head_norm) == pytest.approx(expected)
    rows = plan.describe(head_norm)
    assert [row["push"] for row in rows] == pytest.approx(expected)
