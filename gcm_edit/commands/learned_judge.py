"""The learned judge as a cached stage: fitted once per model, recipe and decoding on the
model's own answers to the training questions, with and without the directive."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gcm_edit.console import console
from gcm_edit.errors import GcmEditError
from gcm_edit.judges.learned import FOLLOWED_AUC, JudgeFit, feature_layer, fit_judge
from gcm_edit.keys import StageConfig

if TYPE_CHECKING:
    from gcm_edit.commands.run import Run

WITHOUT = "judge: training answers without the directive"
WITH = "judge: training answers with the directive"


class LearnedJudgeStage(StageConfig):
    """The probe and its out-of-fold figures, from two answer sets read by one model."""

    without: str  # AnswersStage key: the training questions asked bare
    with_directive: str  # AnswersStage key: asked with the directive's contrast side
    reader: str  # fingerprint of the model whose hidden states are the features
    layer: int


def learned_judge_stage(run: Run) -> LearnedJudgeStage:
    recipe = run.recipe
    return LearnedJudgeStage(
        without=run.answers_stage(list(recipe.train), None).key(),
        with_directive=run.answers_stage(list(recipe.train), None, recipe.directive).key(),
        reader=run.model_ref.fingerprint(),
        layer=feature_layer(run.geometry.n_layers),
    )


def fitted_judge(run: Run) -> JudgeFit:
    """The probe fitted on the model's answers to the training questions (cached)."""
    recipe, stage = run.recipe, learned_judge_stage(run)

    def fit() -> JudgeFit:
        questions = list(recipe.train)
        without = run.answers(WITHOUT, questions, None)
        with_ = run.answers(WITH, questions, None, directive=recipe.directive)
        batch = run.settings.batch_size
        return fit_judge(run.model, run.tokenizer, without, with_, stage.layer, batch)

    return run.cached(
        "judge-{key}.json",
        "learned judge",
        stage,
        fit,
        encode=JudgeFit.to_json,
        decode=JudgeFit.from_json,
        label="learned judge",
    )


def judge_fit(run: Run) -> JudgeFit:
    """The fitted judge; stops in one line when the model barely follows the directive
    (answers with and without it are hardly told apart): nothing worth learning or judging."""
    fitted = fitted_judge(run)
    recipe, trust = run.recipe, fitted.trust
    if trust.cv_auc < FOLLOWED_AUC:
        raise GcmEditError(
            f"{run.model_ref.slug} barely follows {recipe.directive.contrast!r}: its answers "
            f"with and without it are told apart at AUC {trust.cv_auc:.2f} (learned judge, "
            f"{trust.n_questions} training questions, below {FOLLOWED_AUC}); try another "
            "wording, a response prefill in a recipe, or a larger model"
        )
    console.print(f"learned judge: {trust.sentence()}", highlight=False)
    return fitted
