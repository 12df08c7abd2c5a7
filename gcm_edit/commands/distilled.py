"""`export --edit distilled`: the selected heads' edit learned from the prompted model.

The mean-difference plan (α·δ on the top-k% heads) is the start and the rival. The prompted
base model answers the recipe's distillation questions (best of `--teacher-candidates`,
judged concept ∧ fluent ∧ relevant), the heads' b (and rank-`--edit-rank` maps A) are fitted
to its next-token distributions under KL ≤ `--kl-budget` (default 0.5) on neutral prompts
(steering/distill.py), and of the snapshots the best on the validation split within that KL
is the plan. Held-out, the card compares it with the mean-difference plan on the same heads.
"""

from __future__ import annotations

from dataclasses import dataclass

from gcm_edit.cache import stable_hash
from gcm_edit.checkpoint.manifest import DistillationReport, PlanComparison
from gcm_edit.commands.candidates import best_snapshot
from gcm_edit.commands.export_settings import ExportSettings
from gcm_edit.commands.settings import DISTILL_KL
from gcm_edit.commands.steering_run import SteeringRun
from gcm_edit.commands.strength import Strength
from gcm_edit.errors import GcmEditError
from gcm_edit.evaluation.plan_results import PlanResult
from gcm_edit.evaluation.relevance import RELEVANCE
from gcm_edit.pairs.teacher import TeacherSet, build_teacher_set
from gcm_edit.steering.distill import NEUTRAL_PER_STEP, EditObjective, LearnedEdit, learn_edit
from gcm_edit.steering.plan import SteeringPlan
from gcm_edit.steering.vectors import HEAD_NORM
from gcm_edit.version import __version__


def teacher_key(run: SteeringRun) -> str:
    s: ExportSettings = run.settings
    recipe = run.recipe
    return stable_hash(
        "teacher",
        __version__,
        run.model_ref.fingerprint(),
        recipe.distill_questions()[: s.distill_questions],
        recipe.directive.model_dump() if recipe.directive else None,
        recipe.prefill.model_dump(exclude_none=True),
        run.tokenizer.chat_template,
        run.decoding,
        s.teacher_candidates,
        run.judge_id,
        recipe.fluency.model_dump(),
        RELEVANCE,
        recipe.require_relevance,
    )


def teacher_set(run: SteeringRun) -> TeacherSet:
    """The prompted model's good answers to the distillation questions (cached stage)."""
    s: ExportSettings = run.settings
    questions = run.recipe.distill_questions()[: s.distill_questions]

    def keep(asked: list[str], texts: list[str]) -> list[bool]:
        return [row["success"] for row in run.judged(asked, texts).answers]

    def build() -> TeacherSet:
        teacher = build_teacher_set(
            run.model,
            run.tokenizer,
            run.recipe,
            questions,
            run.decoding,
            s.teacher_candidates,
            keep,
            s.generation_batch,
        )
        if not teacher.examples:
            raise GcmEditError(
                f"the prompted model gave no good answer (concept ∧ fluent ∧ relevant) to "
                f"{len(questions)} distillation questions in {s.teacher_candidates} tries: "
                "raise --teacher-candidates, or use --edit mean-diff"
            )
        return teacher

    return run.cached(
        "teacher-{key}.json",
        "teacher answers",
        teacher_key(run),
        build,
        encode=TeacherSet.to_json,
        decode=TeacherSet.from_json,
        label="teacher answers",
    )


@dataclass(frozen=True)
class DistilledStrength:
    """--edit distilled: the kept snapshot's plan and its rival, the mean-difference plan."""

    plan: SteeringPlan
    rival: SteeringPlan
    goal: EditObjective
    teacher: TeacherSet
    result: LearnedEdit
    step: int
    validation: list[PlanResult]

    @classmethod
    def learn(cls, run: SteeringRun, strength: Strength) -> DistilledStrength:
        s: ExportSettings = run.settings
        rival = strength.plan(run)
        teacher = teacher_set(run)
        goal = EditObjective(
            rank=s.edit_rank,
            lr=s.edit_lr,
            steps=s.edit_steps,
            kl_target=DISTILL_KL if s.kl_budget is None else s.kl_budget,
            lambda_f=s.lambda_f,
            seed=s.seed,
            snapshot_every=s.edit_eval_every,
            neutral_prompts=NEUTRAL_PER_STEP,
        )
        heads = list(rival.heads)
        head_norm = run.deltas[HEAD_NORM]

        def decode(data: dict) -> LearnedEdit:
            result = LearnedEdit(**{**data, "heads": [tuple(h) for h in data["heads"]]})
            if result.heads != heads or not result.snapshots:
                raise ValueError("an edit of other heads")
            return result

        on_policy = None
        key = [__version__, teacher_key(run), rival.fingerprint(), heads, goal]
        if s.edit_on_policy_steps:  # in the key only when used: earlier edits keep theirs
            on_policy = (s.edit_on_policy_steps, run.decoding, s.generation_batch)
            key.append(on_policy[0])
        result = run.cached(
            "distilled-{key}.json",
            "distilled edit",
            stable_hash(*key),
            lambda: learn_edit(
                run.model,
                run.tokenizer,
                teacher.examples,
                heads,
                rival.alpha * rival.vectors,
                head_norm[[h[0] for h in heads], [h[1] for h in heads]],
                goal,
                s.edit_batch,
                on_policy,
            ),
            encode=vars,
            decode=decode,
            label="distilled edit",
        )
        snapshots = [(x["step"], result.plan(run.geometry, x["step"])) for x in result.snapshots]
        chosen = best_snapshot(run, strength, snapshots, goal.kl_target, "distilled", "distilled")
        if chosen is None:
            smallest = min(run.retention(plan).kl for _, plan in snapshots)
            raise GcmEditError(
                f"no distilled snapshot stays within KL {goal.kl_target:g} (the smallest was "
                f"{smallest:.3f}): raise --kl-budget or --edit-steps"
            )
        step, plan, rows = chosen
        return cls(plan, rival, goal, teacher, result, step, rows)

    def report(self, comparison: list[PlanComparison]) -> DistillationReport:
        t = self.teacher
        return DistillationReport(
            objective=vars(self.goal),
            questions=t.n_questions,
            teacher_answers=len(t.examples),
            teacher_candidates=t.candidates,
            greedy_kept=t.greedy_kept,
            heads=[list(h) for h in self.result.heads],
            chosen_step=self.step,
            history=self.result.history,
            validation=self.validation,
            comparison=comparison,
        )
