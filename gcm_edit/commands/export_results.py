"""What an export measures of its plan before it is written: held-out answers against the
base, the prompting reference and the edit's rival; retention, facts and the dose curve."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from gcm_edit.checkpoint.manifest import CompositionRow, DoseRow
from gcm_edit.checkpoint.sections import PlanComparison
from gcm_edit.commands.compose import compose_concepts, composition_row
from gcm_edit.commands.edits import FittedEdit
from gcm_edit.commands.heldout import dose_curve, evaluate_heldout
from gcm_edit.commands.steering_run import SteeringRun
from gcm_edit.evaluation.answers import Evaluation
from gcm_edit.evaluation.capability import Capability
from gcm_edit.evaluation.retention import Retention
from gcm_edit.steering.plan import SteeringPlan

if TYPE_CHECKING:
    from gcm_edit.commands.export_settings import ExportSettings


@dataclass
class ExportResults:
    plan: SteeringPlan
    metrics: dict[str, Evaluation]
    retention: Retention
    capability: Capability
    comparison: list[PlanComparison]  # the plan against its rival, held-out; [] without one
    composition: list[CompositionRow] | None
    doses: list[DoseRow] | None


def comparison_row(name: str, plan: SteeringPlan, ev: Evaluation, kl: float) -> PlanComparison:
    return PlanComparison(
        plan=name,
        heads=len(plan.steered_heads),
        success=ev.success,
        concept=ev.concept,
        fluent=ev.fluent,
        relevant=ev.relevant,
        kl=kl,
    )


def measure_export(run: SteeringRun, fitted: FittedEdit, s: ExportSettings) -> ExportResults:
    """Every held-out figure of the fitted plan (composed with further concepts if asked)."""
    plans: dict[str, SteeringPlan | None] = {"base": None, "steered": fitted.plan}
    if fitted.rival is not None:
        plans[fitted.rival_name] = fitted.rival
    composed = None
    if s.compose:
        plans["alone"] = fitted.plan
        plans["steered"], composed = compose_concepts(run, fitted.plan, s)
    plan = plans["steered"]
    metrics = evaluate_heldout(run, plans, s.n_heldout)
    with run.stage("retention"):
        retention = run.retention(plan)
        comparison = []
        if fitted.rival is not None:
            kl = run.retention(fitted.rival).kl
            comparison = [
                comparison_row("steered", plan, metrics["steered"], retention.kl),
                comparison_row(fitted.rival_name, fitted.rival, metrics[fitted.rival_name], kl),
            ]
    capability = run.capability(plan)
    doses = None
    if s.format == "adapter" and s.doses:
        doses = dose_curve(run, plan, metrics, retention, s.doses, s.n_heldout)
    composition = None
    if composed is not None:
        composition = [
            composition_row(run, plans["alone"], metrics),
            *(composition_row(*concept) for concept in composed),
        ]
    return ExportResults(plan, metrics, retention, capability, comparison, composition, doses)
