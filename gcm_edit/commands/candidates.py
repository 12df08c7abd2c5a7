"""Candidate plans measured on the validation split (never the held-out one).

`calibrate` (positions × α), `sweep` (method × k × α), `export --alpha auto` and the
learned-scales rival all score a candidate the same way: success (concept ∧ fluent) on the
validation questions (concept ∧ fluent ∧ relevant, with its 95% interval), with KL(base ‖
steered) on neutral prompts as the tie-breaker.
"""

from __future__ import annotations

from gcm_edit.commands.run import Run, SteeringRun
from gcm_edit.evaluation.plan_results import PlanResult, best
from gcm_edit.steering.plan import SteeringPlan


def measure(
    run: Run, questions: list[str], plan: SteeringPlan | None, method: str, **keys
) -> PlanResult:
    """One row: `method` and `keys` (positions, k_percent, alpha) plus what the plan achieved."""
    label = "validation (base)"
    if plan is not None:
        label = (
            f"validation ({method}, {keys['positions']}, k={keys['k_percent']:g}%, "
            f"α={keys['alpha']:g})"
        )
    ev = run.judged(questions, run.answers(label, questions, plan))
    return PlanResult(
        method=method,
        **keys,
        n_heads=0 if plan is None else len(plan.steered_heads),
        success=ev.success,
        concept=ev.concept,
        fluent=ev.fluent,
        relevant=ev.relevant,
        median_perplexity=round(ev.median_perplexity, 2),
        grade=round(ev.grade, 4),
        kl=0.0 if plan is None else round(run.retention(plan).kl, 5),
    )


def choose_alpha_k(
    run: SteeringRun,
    positions: str,
    method: str,
    intervention: str,
    alphas: list[float],
    ks: list[float],
    n_validation: int | None,
) -> tuple[PlanResult, list[PlanResult]]:
    """Grid-search α × k% on the validation split: (best row, every row)."""
    questions = run.recipe.validation[:n_validation]
    rows = [
        measure(
            run,
            questions,
            run.plan(positions, alpha, k, method, intervention),
            method,
            positions=positions,
            k_percent=k,
            alpha=alpha,
        )
        for k in ks
        for alpha in alphas
    ]
    return best(rows), rows
