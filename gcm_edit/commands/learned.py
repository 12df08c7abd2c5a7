"""`export --learn-scales`: per-head scales learned from the chosen uniform plan, kept only
when they do better on validation at no more KL.

The uniform plan (α, k%, positions, ranking as chosen) is the warm start and the rival: its
heads start at c = 1, the other candidates (the top `--scale-candidates`% by the same
ranking) at 0, and the Lagrange multiplier holds KL to `--kl-budget`, or to the uniform
plan's own KL without one. Every snapshot (step 0 is the uniform plan itself) is measured on
the validation split and the best within the KL target is the plan; held-out, the card then
compares it with the uniform plan at the same KL target.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from gcm_edit.cache import stable_hash
from gcm_edit.checkpoint.manifest import PlanComparison, ScaleLearningReport
from gcm_edit.commands.candidates import best_snapshot
from gcm_edit.commands.settings import ScaleLearningSettings
from gcm_edit.commands.steering_run import SteeringRun
from gcm_edit.commands.strength import Strength
from gcm_edit.errors import GcmEditError
from gcm_edit.evaluation.plan_results import PlanResult
from gcm_edit.steering.plan import SteeringPlan
from gcm_edit.steering.scales import LearnedScales, ScaleObjective, learn_scales
from gcm_edit.version import __version__


def candidate_heads(run: SteeringRun, strength: Strength, rival: SteeringPlan) -> list:
    """The rival's heads first, then the top `--scale-candidates`% by the same ranking."""
    share = run.settings.scale_candidates
    wider = replace(strength, k_percent=share).plan(run)
    return list(dict.fromkeys([*rival.heads, *wider.heads]))


def learned(
    run: SteeringRun, strength: Strength, candidates: list, goal: ScaleObjective
) -> LearnedScales:
    settings: ScaleLearningSettings = run.settings
    positions = strength.positions

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
        stable_hash(
            __version__, run.scores_key(positions, strength.method), positions, candidates, goal
        ),
        learn,
        encode=vars,
        decode=decode,
        label="learned scales",
    )


def scaled_plan(
    run: SteeringRun, positions: str, heads: list, alpha: float, c: list[float], s: list | None
) -> SteeringPlan | None:
    """Heads still steering only: c ≠ 0 → additive (scale c), s ≠ 1 → head scaling; None
    when the L1 term pruned them all."""
    deltas = run.deltas[positions]
    added = [i for i, value in enumerate(c) if value != 0]
    scaled = [i for i, value in enumerate(s or []) if value != 1]
    if not added and not scaled:
        return None
    vectors = [deltas[heads[i]] for i in added]
    return SteeringPlan(
        run.geometry,
        [heads[i] for i in added],
        torch.stack(vectors) if vectors else torch.zeros(0, run.geometry.head_dim),
        alpha,
        [c[i] for i in added],
        [heads[i] for i in scaled],
        [s[i] for i in scaled],
    )


@dataclass(frozen=True)
class LearnedStrength:
    """--learn-scales: the chosen snapshot's plan and its rival, the uniform warm start."""

    plan: SteeringPlan
    rival: SteeringPlan
    goal: ScaleObjective
    result: LearnedScales
    step: int  # the snapshot kept
    validation: list[PlanResult]  # one row per snapshot measured

    @classmethod
    def learn(
        cls, run: SteeringRun, strength: Strength, kl_target: float | None = None
    ) -> LearnedStrength:
        """From `strength`'s uniform plan, holding KL to `kl_target` (default: its own KL)."""
        s: ScaleLearningSettings = run.settings
        if strength.intervention != "additive":
            raise GcmEditError(
                "--learn-scales learns additive steering: use --intervention additive"
            )
        rival = strength.plan(run)
        candidates = candidate_heads(run, strength, rival)
        target = kl_target if kl_target is not None else run.retention(rival).kl
        goal = ScaleObjective(
            alpha=strength.alpha,
            lambda_f=s.lambda_f,
            lambda_m=s.lambda_m,
            lr=s.scale_lr,
            steps=s.scale_steps,
            learn_head_scale=s.learn_head_scale,
            seed=s.seed,
            kl_target=target,
            init_c=tuple(1.0 if head in rival.heads else 0.0 for head in candidates),
            snapshot_every=s.scale_eval_every,
        )
        result = learned(run, strength, candidates, goal)
        snapshots = [
            (
                snap["step"],
                scaled_plan(
                    run, strength.positions, candidates, strength.alpha, snap["c"], snap["s"]
                ),
            )
            for snap in result.snapshots
        ]
        chosen = best_snapshot(run, strength, snapshots, goal.kl_target, "learned", "additive")
        if chosen is None:
            raise GcmEditError(
                "no learned snapshot stays within the KL target; lower --scale-lr or raise "
                "--kl-budget"
            )
        step, plan, rows = chosen
        return cls(plan, rival, goal, result, step, rows)

    def report(self, comparison: list[PlanComparison]) -> ScaleLearningReport:
        """The kept snapshot's c and s (the plan's), with the whole training history."""
        r = self.result
        kept = next(snap for snap in r.snapshots if snap["step"] == self.step)
        return ScaleLearningReport(
            objective={**vars(self.goal), "init_c": list(self.goal.init_c)},
            candidates=[list(h) for h in r.heads],
            c=kept["c"],
            s=kept["s"],
            surviving=len(self.plan.steered_heads),
            history=r.history,
            chosen_step=self.step,
            validation=self.validation,
            comparison=comparison,
        )
