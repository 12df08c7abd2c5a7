"""`export --learn-scales`: the plan from learned per-head scales, and its uniform-α rival.

The learned scales are cached in the run folder like every stage. The rival plan steers
the same number of heads (top by score) with one α, chosen on the validation split.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gcm_edit.cache import stable_hash
from gcm_edit.checkpoint.manifest import PlanComparison, ScaleLearningReport, UniformRival
from gcm_edit.commands.candidates import choose_alpha_k
from gcm_edit.commands.run import SteeringRun
from gcm_edit.commands.settings import ExportSettings
from gcm_edit.errors import GcmEditError
from gcm_edit.steering.plan import SteeringPlan, select_heads
from gcm_edit.steering.scales import LearnedScales, ScaleObjective, learn_scales
from gcm_edit.version import __version__


def objective(settings: ExportSettings, alpha: float) -> ScaleObjective:
    return ScaleObjective(
        alpha=alpha,
        lambda_f=settings.lambda_f,
        lambda_m=settings.lambda_m,
        lr=settings.scale_lr,
        steps=settings.scale_steps,
        learn_head_scale=settings.learn_head_scale,
        seed=settings.seed,
    )


def learned(run: SteeringRun, goal: ScaleObjective) -> LearnedScales:
    settings: ExportSettings = run.settings
    positions, method = settings.positions, settings.method
    candidates = select_heads(run.scores(positions, method), settings.scale_candidates)

    def learn() -> LearnedScales:
        deltas = run.deltas[positions]
        vectors = torch.stack([deltas[layer, head] for layer, head in candidates])
        pairs = run.pairs.pairs
        return learn_scales(
            run.model, run.tokenizer, pairs, candidates, vectors, goal, settings.batch_size
        )

    def decode(data: dict) -> LearnedScales:
        result = LearnedScales(**{**data, "heads": [tuple(h) for h in data["heads"]]})
        if result.heads != candidates or len(result.c) != len(candidates):
            raise ValueError("scales for other candidate heads")
        return result

    return run.cached(
        "scales-{key}.json",
        "learned scales",
        stable_hash(__version__, run.scores_key(positions, method), candidates, goal),
        learn,
        encode=vars,
        decode=decode,
        label="learned scales",
    )


def learned_plan(run: SteeringRun, result: LearnedScales, alpha: float) -> SteeringPlan:
    """Surviving heads only: c ≠ 0 → additive (scale c), s ≠ 1 → head scaling."""
    if not result.surviving:
        raise GcmEditError(
            "the L1 term pruned every candidate head; lower --lambda-m or raise --alpha"
        )
    deltas = run.deltas[run.settings.positions]
    added = [i for i in result.surviving if result.c[i] != 0]
    scaled = [i for i in result.surviving if result.s and result.s[i] != 1]
    vectors = [deltas[result.heads[i]] for i in added]
    return SteeringPlan(
        run.geometry,
        [result.heads[i] for i in added],
        torch.stack(vectors) if vectors else torch.zeros(0, run.geometry.head_dim),
        alpha,
        [result.c[i] for i in added],
        [result.heads[i] for i in scaled],
        [result.s[i] for i in scaled],
    )


def uniform_rival(run: SteeringRun, n_heads: int) -> tuple[SteeringPlan, UniformRival]:
    """The best uniform-α plan (on validation) steering the top `n_heads` heads."""
    s: ExportSettings = run.settings
    k = 100.0 * n_heads / run.geometry.n_total
    top, rows = choose_alpha_k(
        run, s.positions, s.method, s.intervention, s.auto_alphas, [k], s.n_validation
    )
    plan = run.plan(s.positions, top.alpha, k, s.method, s.intervention)
    return plan, UniformRival(alpha=top.alpha, n_heads=len(plan.steered_heads), validation=rows)


@dataclass(frozen=True)
class LearnedStrength:
    """--learn-scales: the learned plan and its uniform-α rival at the same number of heads."""

    plan: SteeringPlan
    rival: SteeringPlan
    goal: ScaleObjective
    result: LearnedScales
    uniform: UniformRival

    @classmethod
    def learn(cls, run: SteeringRun, alpha: float) -> LearnedStrength:
        goal = objective(run.settings, alpha)
        result = learned(run, goal)
        plan = learned_plan(run, result, alpha)
        rival, uniform = uniform_rival(run, len(plan.steered_heads))
        return cls(plan, rival, goal, result, uniform)

    def report(self, comparison: list[PlanComparison]) -> ScaleLearningReport:
        r = self.result
        return ScaleLearningReport(
            objective=vars(self.goal),
            candidates=[list(h) for h in r.heads],
            c=r.c,
            s=r.s,
            surviving=len(r.surviving),
            history=r.history,
            uniform=self.uniform,
            comparison=comparison,
        )
