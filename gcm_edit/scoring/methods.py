"""The head-scoring methods, one table: what each needs and which Lightning scorer runs it.

Every method returns scores [layers, heads] where higher means "select first".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from gcm_edit.model.heads import HeadGeometry
from gcm_edit.pairs.contrastive import Pair
from gcm_edit.scoring.attribution import AttributionPatching
from gcm_edit.scoring.distillation import DistillationAttribution
from gcm_edit.scoring.engine import Scorer, run_scorer
from gcm_edit.scoring.patching import ExactPatching
from gcm_edit.scoring.positionwise import PositionwisePatching
from gcm_edit.scoring.probe import ProbeScorer
from gcm_edit.scoring.runtime import ScoringRuntime


@dataclass(frozen=True)
class MethodSpec:
    summary: str
    uses_deltas: bool  # scores depend on δ (so on --positions)
    label: str  # what the score means, for plots
    # (model, pairs, deltas, pad_id, runtime) -> Scorer; None: the model is not run
    scorer: Callable[..., Scorer] | None


def random_scores(geometry: HeadGeometry, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(geometry.n_layers, geometry.n_heads, generator=generator)


METHODS: dict[str, MethodSpec] = {
    "attribution": MethodSpec(
        "GCM attribution patching: ∇M·δ, one backward per batch scores every head",
        True,
        "mediation score (∇M·δ)",
        lambda model, pairs, deltas, pad, _s: AttributionPatching(model, pairs, pad, deltas),
    ),
    "activation": MethodSpec(
        "exact patching: M(z += δ) − M(), one forward per head",
        True,
        "indirect effect of z += δ",
        lambda model, pairs, deltas, pad, s: ExactPatching(model, pairs, pad, s.head_batch, deltas),
    ),
    "paper": MethodSpec(
        "the paper's position-wise contrast→original patch, attribution-approximated",
        False,
        "mediation score (∇M·Δz)",
        lambda model, pairs, _d, pad, _s: PositionwisePatching(model, pairs, pad),
    ),
    "knockout": MethodSpec(
        "zero-ablation: M() − M(z ← 0), one forward per head",
        False,
        "contribution to M (−ablation effect)",
        lambda model, pairs, _d, pad, s: ExactPatching(model, pairs, pad, s.head_batch),
    ),
    "probe": MethodSpec(
        "ITI baseline: per-head logistic probe, held-out accuracy",
        False,
        "held-out probe accuracy",
        lambda model, pairs, _d, pad, s: ProbeScorer(model, pairs, pad, s.seed),
    ),
    "distillation": MethodSpec(
        "attribution on the distillation loss: −∇L·δ, one backward per batch scores every head",
        True,
        "drop of the distillation loss (−∇L·δ)",
        lambda model, pairs, deltas, pad, _s: DistillationAttribution(model, pairs, pad, deltas),
    ),
    "random": MethodSpec("baseline: seeded uniform random ranking", False, "random score", None),
}


def score_heads(
    model,
    pairs: list[Pair],
    deltas: torch.Tensor | None,
    pad_id: int,
    method: str = "attribution",
    runtime: ScoringRuntime = ScoringRuntime(),  # noqa: B008 (frozen, never mutated)
) -> torch.Tensor:
    """Scores [layers, heads] by `method`; `deltas` ([L, H, d]) when the method uses δ."""
    spec = METHODS[method]
    if spec.uses_deltas and deltas is None:
        raise ValueError(f"method {method} needs steering vectors")
    if spec.scorer is None:
        return random_scores(HeadGeometry.of(model.config), runtime.seed)
    return run_scorer(spec.scorer(model, pairs, deltas, pad_id, runtime), runtime)
