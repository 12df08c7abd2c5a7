"""`--edit scales`: per-head scales learned from the chosen uniform plan, kept only when they
do better on validation at no more KL.

The uniform plan (α, k%, positions, ranking as chosen) is the warm start and the rival: its
heads start at c = 1, the other candidates (the top `--scale-candidates`% by the same
ranking) at 0, and the Lagrange multiplier holds KL to `--kl-budget`, or to the uniform
plan's own KL without one. Every snapshot (step 0 is the uniform plan itself) is measured on
the validation split and the best within the KL target is the plan; held-out, the card then
compares it with the uniform plan at the same KL target.

The model libraries are imported inside `learn`: the command line imports this config for --help.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from gcm_edit.checkpoint.sections import EditReport
from gcm_edit.commands.edits.base import EditConfig, FittedEdit, flag, learned_option
from gcm_edit.console import console
from gcm_edit.errors import GcmEditError
from gcm_edit.keys import StageConfig

if TYPE_CHECKING:
    from gcm_edit.commands.steering_run import SteeringRun
    from gcm_edit.commands.strength import Strength
    from gcm_edit.evaluation.plan_results import PlanResult
    from gcm_edit.steering.plan import SteeringPlan
    from gcm_edit.steering.scales import LearnedScales, ScaleObjective

UNIFORM = "uniform α"  # the rival: the warm start, every head at c = 1
# Options of 0.1 named after the scales, now shared by every learned edit (one release)
OLD_NAMES = {
    "scale_steps": ("edit_steps", None),
    "scale_lr": ("edit_lr", None),
    "scale_eval_every": ("edit_eval_every", None),
}


class ScalesStage(StageConfig):
    scores: str  # the scores' key (pairs, method, precision, seed)
    positions: str
    candidates: list[tuple[int, int]]
    objective: Any  # steering.scales.ScaleObjective
    batch_size: int  # pairs per optimiser step


class ScaleLearningReport(EditReport):
    kind: Literal["scales"] = "scales"
    candidates: list[list[int]]
    c: list[float]
    s: list[float] | None
    surviving: int
    title: ClassVar[str] = "Learned scales vs their uniform warm start, same KL target (held-out)"
    learned: ClassVar[str] = "learned scales"

    def card_section(self) -> str:
        goal = self.objective
        kept = (
            "the uniform plan itself (step 0): no learned snapshot did better"
            if self.chosen_step == 0
            else f"step {self.chosen_step}, {self.surviving} heads"
        )
        return f"""## Learned scales

Per-head scales were learned (activation scaling: −M per token + λ·KL + {goal["lambda_m"]}·L1,
λ a Lagrange multiplier holding KL per neutral token to {goal["kl_target"]:.4g}; {goal["steps"]}
Adam steps, lr {goal["lr"]}) on {len(self.candidates)} candidate heads, starting from the
uniform plan. Of the snapshots every {goal["snapshot_every"]} steps, the best on the validation
split within the KL target was kept: {kept}. Held-out, against that uniform plan:

{self.table().markdown()}

"""


class ScalesConfig(EditConfig):
    """A steering scale per head, learned from the best uniform plan at no more KL."""

    kind: Literal["scales"] = "scales"
    candidates: float = Field(
        10.0,
        gt=0,
        le=100,
        description="Candidate heads for learned scales: top % by score.",
        json_schema_extra=flag("scale-candidates"),
    )
    steps: int = learned_option("steps", 40)
    lr: float = learned_option("lr", 0.05)
    lambda_f: float = learned_option("lambda_f", 1.0)
    eval_every: int = learned_option("eval_every", 10)
    lambda_m: float = Field(0.5, ge=0, description="Weight of the L1 term (learned scales).")
    head_scale: bool = Field(
        False,
        description="Also learn s scaling each head's own output (z ← s·z + α·c·δ).",
        json_schema_extra=flag("learn-head-scale"),
    )

    def fit(self, run: SteeringRun, strength: Strength, settings) -> FittedEdit:
        """From `strength`'s uniform plan, holding KL to `--kl-budget` (default: its own KL)."""
        return self.learn(
            run,
            strength,
            settings.seed,
            settings.batch_size,
            settings.n_validation,
            settings.kl_budget,
        )

    def learn(
        self,
        run: SteeringRun,
        strength: Strength,
        seed: int,
        batch_size: int,
        n_validation: int | None,
        kl_target: float | None = None,
    ) -> FittedEdit:
        from gcm_edit.commands.candidates import best_snapshot
        from gcm_edit.steering.scales import ScaleObjective

        rival = strength.plan(run)
        wider = replace(strength, k_percent=self.candidates).plan(run)
        candidates = list(dict.fromkeys([*rival.heads, *wider.heads]))
        goal = ScaleObjective(
            alpha=strength.alpha,
            lambda_f=self.lambda_f,
            lambda_m=self.lambda_m,
            lr=self.lr,
            steps=self.steps,
            learn_head_scale=self.head_scale,
            seed=seed,
            kl_target=kl_target if kl_target is not None else run.retention(rival).kl,
            init_c=tuple(1.0 if head in rival.heads else 0.0 for head in candidates),
            snapshot_every=self.eval_every,
        )
        stage = ScalesStage(
            scores=run.scores_stage(strength.positions, strength.method).key(),
            positions=strength.positions,
            candidates=candidates,
            objective=goal,
            batch_size=batch_size,
        )
        result = learned(run, stage)
        snapshots = [
            (snap["step"], scaled_plan(run, stage, snap["c"], snap["s"]))
            for snap in result.snapshots
        ]
        chosen = best_snapshot(
            run, strength, snapshots, goal.kl_target, "learned", "additive", n_validation
        )
        if chosen is None:
            raise GcmEditError(
                "no learned snapshot stays within the KL target; lower --edit-lr or raise "
                "--kl-budget"
            )
        step, plan, rows = chosen
        console.print(
            f"learned scales: kept step {step} ({len(plan.steered_heads)} heads) against the "
            f"uniform plan's {len(rival.steered_heads)} heads, KL target {goal.kl_target:.4g}"
        )
        return FittedEdit(
            plan,
            rival,
            UNIFORM,
            lambda comparison: report(result, goal, step, plan, rows, comparison),
        )


def report(
    result: LearnedScales,
    goal: ScaleObjective,
    step: int,
    plan: SteeringPlan,
    rows: list[PlanResult],
    comparison,
) -> ScaleLearningReport:
    """The kept snapshot's c and s (the plan's), with the whole training history."""
    kept = next(snap for snap in result.snapshots if snap["step"] == step)
    return ScaleLearningReport(
        objective={**vars(goal), "init_c": list(goal.init_c)},
        candidates=[list(h) for h in result.heads],
        c=kept["c"],
        s=kept["s"],
        surviving=len(plan.steered_heads),
        history=result.history,
        chosen_step=step,
        validation=rows,
        comparison=comparison,
    )


def learned(run: SteeringRun, stage: ScalesStage) -> LearnedScales:
    import torch

    from gcm_edit.steering.scales import LearnedScales, learn_scales

    def learn() -> LearnedScales:
        deltas = run.deltas[stage.positions]
        vectors = torch.stack([deltas[layer, head] for layer, head in stage.candidates])
        pairs = run.pairs.pairs
        return learn_scales(
            run.model,
            run.tokenizer,
            pairs,
            stage.candidates,
            vectors,
            stage.objective,
            stage.batch_size,
        )

    def decode(data: dict) -> LearnedScales:
        result = LearnedScales(**{**data, "heads": [tuple(h) for h in data["heads"]]})
        if result.heads != stage.candidates or len(result.c) != len(stage.candidates):
            raise ValueError("scales for other candidate heads")
        return result

    return run.cached(
        "scales-{key}.json",
        "learned scales",
        stage,
        learn,
        encode=vars,
        decode=decode,
        label="learned scales",
    )


def scaled_plan(
    run: SteeringRun, stage: ScalesStage, c: list[float], s: list | None
) -> SteeringPlan | None:
    """Heads still steering only: c ≠ 0 → additive (scale c), s ≠ 1 → head scaling; None
    when the L1 term pruned them all."""
    import torch

    from gcm_edit.steering.plan import SteeringPlan

    deltas = run.deltas[stage.positions]
    heads = stage.candidates
    added = [i for i, value in enumerate(c) if value != 0]
    scaled = [i for i, value in enumerate(s or []) if value != 1]
    if not added and not scaled:
        return None
    vectors = [deltas[heads[i]] for i in added]
    return SteeringPlan(
        run.geometry,
        [heads[i] for i in added],
        torch.stack(vectors) if vectors else torch.zeros(0, run.geometry.head_dim),
        stage.objective.alpha,
        [c[i] for i in added],
        [heads[i] for i in scaled],
        [s[i] for i in scaled],
    )
