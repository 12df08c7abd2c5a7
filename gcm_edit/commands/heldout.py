"""Held-out figures of plans: judged answers (with the prompting reference) and the
adapter's dose curve. Held-out questions only ever report; nothing is chosen on them."""

from __future__ import annotations

from gcm_edit.checkpoint.manifest import DoseRow
from gcm_edit.commands.run import Run
from gcm_edit.commands.steering_run import SteeringRun
from gcm_edit.evaluation.answers import PROMPTED, Evaluation
from gcm_edit.evaluation.retention import Retention
from gcm_edit.steering.plan import SteeringPlan


def evaluate_heldout(
    run: Run,
    plans: dict[str, SteeringPlan | None],
    n_heldout: int | None,
    prompting_reference: bool = True,
) -> dict[str, Evaluation]:
    """Held-out answers (no directive) of each plan (None: the base model), judged; plus the
    prompting reference, the base model asked with the recipe's contrast directive (the
    baseline steering has to beat; recipes of explicit pairs have no directive, so none)."""
    questions = run.recipe.heldout[:n_heldout]
    answers = {
        name: run.answers(f"held-out answers ({name})", questions, plan)
        for name, plan in plans.items()
    }
    if prompting_reference and run.recipe.directive is not None:
        answers[PROMPTED] = run.answers(
            f"held-out answers ({PROMPTED})", questions, None, directive=run.recipe.directive
        )
    _ = run.model  # loaded outside the judging timer
    with run.stage("judging"):
        return {name: run.judged(questions, texts) for name, texts in answers.items()}


def dose_curve(
    run: SteeringRun,
    plan: SteeringPlan,
    metrics: dict[str, Evaluation],
    retention: Retention,
    doses: list[float],
    n_heldout: int | None,
) -> list[DoseRow]:
    """Held-out success and KL of the plan at each dose (what PEFT's LoRA scale sets on the
    adapter: tests/checkpoint/test_adapter.py checks the two are the same model), with dose 0
    (the base) and 1 (the export) taken from the figures already measured."""
    questions = run.recipe.heldout[:n_heldout]
    measured = {0.0: (metrics["base"], None), 1.0: (metrics["steered"], retention)}
    for dose in sorted(set(doses) - set(measured)):
        dosed = plan.dosed(dose)
        texts = run.answers(f"held-out answers (dose {dose:g})", questions, dosed)
        with run.stage("judging"):
            judged = run.judged(questions, texts)
        with run.stage("retention"):
            measured[dose] = (judged, run.retention(dosed))
    return [
        DoseRow(
            dose=dose,
            success=ev.success,
            concept=ev.concept,
            fluent=ev.fluent,
            relevant=ev.relevant,
            kl=0.0 if kept is None else kept.kl,
            neutral_ppl_ratio=1.0
            if kept is None
            else kept.neutral_ppl_steered / kept.neutral_ppl_base,
        )
        for dose, (ev, kept) in sorted(measured.items())
    ]
