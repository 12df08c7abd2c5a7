"""The distilled edit's training answers, each a cached stage: the prompted model's judged
answers (the teacher), and with `--teacher-steered` the start plan's own judged answers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gcm_edit.keys import StageConfig

if TYPE_CHECKING:
    from gcm_edit.commands.steering_run import SteeringRun
    from gcm_edit.pairs.teacher import TeacherSet
    from gcm_edit.steering.plan import SteeringPlan


class TeacherStage(StageConfig):
    """The prompted model's judged answers to the distillation questions."""

    model: str
    questions: list[str]
    directive: dict | None
    prefill: dict
    chat_template: str | None
    decoding: Any  # model.generation.Decoding
    candidates: int
    generation_batch: int  # pairs.teacher.SAMPLE_BATCH: samples draw batch by batch
    seed: int  # the samples' streams (--seed)
    judge: str | list[str]
    fluency: dict
    relevance: dict
    require_relevance: bool


class SteeredAnswersStage(TeacherStage):
    """The same questions answered bare by the model under the start plan, judged alike."""

    plan: str  # the start plan's fingerprint


def teacher_stage(run: SteeringRun, questions: int, candidates: int, seed: int) -> TeacherStage:
    from gcm_edit.evaluation.relevance import RELEVANCE
    from gcm_edit.pairs.teacher import SAMPLE_BATCH

    recipe = run.recipe
    return TeacherStage(
        model=run.model_ref.fingerprint(),
        questions=recipe.distill_questions()[:questions],
        directive=recipe.directive.model_dump() if recipe.directive else None,
        prefill=recipe.prefill.model_dump(exclude_none=True),
        chat_template=run.tokenizer.chat_template,
        decoding=run.decoding,
        candidates=candidates,
        generation_batch=SAMPLE_BATCH,
        seed=seed,
        judge=run.judge_id,
        fluency=recipe.fluency.model_dump(),
        relevance=RELEVANCE,
        require_relevance=recipe.require_relevance,
    )


def judged_good(run: SteeringRun):
    """The judges as a keep-function: concept ∧ fluent ∧ relevant of each answer (fluency
    and relevance measured only where the concept is present: nothing else is kept)."""

    def keep(asked: list[str], texts: list[str]) -> list[bool]:
        return [row["success"] for row in run.judged(asked, texts, concept_first=True).answers]

    return keep


def teacher_set(run: SteeringRun, stage: TeacherStage) -> TeacherSet:
    """The prompted model's good answers to the distillation questions (may be none)."""
    from gcm_edit.pairs.teacher import TeacherSet, build_teacher_set

    def build() -> TeacherSet:
        s = stage
        return build_teacher_set(
            run.model, run.tokenizer, run.recipe, s.questions, s.decoding, s.candidates,
            judged_good(run), s.generation_batch, s.seed,
        )  # fmt: skip

    return run.cached(
        "teacher-{key}.json",
        "teacher answers",
        stage,
        build,
        encode=TeacherSet.to_json,
        decode=TeacherSet.from_json,
        label="teacher answers",
    )


def steered_stage(stage: TeacherStage, plan: SteeringPlan) -> SteeredAnswersStage:
    """The teacher's questions, decoding, tries and judges, answered under `plan`."""
    fields = {name: getattr(stage, name) for name in TeacherStage.model_fields}
    return SteeredAnswersStage(**fields, plan=plan.fingerprint())


def steered_set(run: SteeringRun, steered: SteeredAnswersStage, plan: SteeringPlan) -> TeacherSet:
    """The start plan's own good answers to the same questions, asked bare (may be none)."""
    from gcm_edit.pairs.teacher import TeacherSet, build_steered_set

    def build() -> TeacherSet:
        s = steered
        return build_steered_set(
            run.model, run.tokenizer, s.questions, s.decoding, s.candidates, judged_good(run),
            s.generation_batch, s.seed, lambda: plan.apply(run.model),
        )  # fmt: skip

    return run.cached(
        "steered-answers-{key}.json",
        "steered answers",
        steered,
        build,
        encode=TeacherSet.to_json,
        decode=TeacherSet.from_json,
        label="steered answers",
    )
