"""Several `--concept`s baked into one checkpoint: each concept's plan, disjoint heads, and
each concept's held-out success alone and composed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gcm_edit.checkpoint.manifest import CompositionRow
from gcm_edit.commands.heldout import evaluate_heldout
from gcm_edit.commands.run import Run
from gcm_edit.commands.steering_run import SteeringRun
from gcm_edit.commands.strength import choose_strength
from gcm_edit.evaluation.answers import Evaluation
from gcm_edit.steering.plan import SteeringPlan

if TYPE_CHECKING:
    from gcm_edit.commands.export_settings import ExportSettings


def composition_row(
    run: Run, alone: SteeringPlan, metrics: dict[str, Evaluation], given_up: list = ()
) -> CompositionRow:
    """One concept's held-out success: base, its own plan alone, and the composed model;
    `given_up`: the heads its own ranking wanted that an earlier concept already steers."""
    return CompositionRow(
        concept=run.recipe.name,
        recipe_sha256=run.recipe.sha256(),
        heads=[list(h) for h in alone.steered_heads],
        given_up=[list(h) for h in given_up],
        alpha=alone.alpha,
        base_success=metrics["base"].success,
        alone_success=metrics["alone"].success,
        composed_success=metrics["steered"].success,
    )


def compose_concepts(
    run: SteeringRun, first: SteeringPlan, s: ExportSettings
) -> tuple[SteeringPlan, list[tuple[Run, SteeringPlan, dict[str, Evaluation], list]]]:
    """Plans for the further concepts (same settings, same loaded model), composed with the
    first; each further concept is judged on its own held-out questions alone and composed.

    With --compose-disjoint (default) each concept takes the best heads no earlier concept
    steers: two concepts pushing the same head's output is where they interfere most."""
    others = [
        SteeringRun(s.model_copy(update={"concept": concept, "compose": []}), model=run.model)
        for concept in s.compose
    ]
    alone, given_up, taken = [], [], set(first.steered_heads)
    for other in others:
        strength = choose_strength(other, s)
        wanted = strength.plan(other).steered_heads
        exclude = frozenset(taken) if s.compose_disjoint else frozenset()
        plan = strength.plan(other, exclude)
        given_up.append([h for h in wanted if h in taken and h not in plan.steered_heads])
        taken |= set(plan.steered_heads)
        alone.append(plan)
    composed = SteeringPlan.compose([first, *alone])
    judged = []
    for other, plan, lost in zip(others, alone, given_up, strict=True):
        plans = {"base": None, "alone": plan, "steered": composed}
        metrics = evaluate_heldout(other, plans, s.n_heldout, prompting_reference=False)
        judged.append((other, plan, metrics, lost))
    return composed, judged
