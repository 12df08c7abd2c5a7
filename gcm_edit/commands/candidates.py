"""Candidate plans measured on the validation split (never the held-out one).

`calibrate` (positions × α), `sweep` (method × k × α), `export --alpha auto`,
`export --kl-budget` and learned scales' early stopping all score a candidate the same way:
success on the validation questions (concept ∧ fluent ∧ relevant, with its 95% interval),
with KL(base ‖ steered) on neutral prompts as the tie-breaker.
"""

from __future__ import annotations

import itertools

from gcm_edit.commands.run import Run
from gcm_edit.commands.steering_run import SteeringRun
from gcm_edit.errors import GcmEditError
from gcm_edit.evaluation.plan_results import PlanResult, best
from gcm_edit.inputs.recipe import Directive
from gcm_edit.steering.plan import SteeringPlan


def measure(
    run: Run,
    questions: list[str],
    plan: SteeringPlan | None,
    method: str,
    directive: Directive | None = None,
    **keys,
) -> PlanResult:
    """One row: `method` and `keys` (positions, k_percent, alpha, ...) plus what the plan
    achieved; with `directive`, the unsteered model asked with it (the prompting reference)."""
    label = f"validation ({method})"
    if plan is not None:
        extra = "".join(f", {keys[name]}" for name in ("rank_by", "intervention") if name in keys)
        label = (
            f"validation ({method}, {keys['positions']}, k={keys['k_percent']:g}%, "
            f"α={keys['alpha']:g}{extra})"
        )
    ev = run.judged(questions, run.answers(label, questions, plan, directive=directive))
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
    rank_by: str = "effect",
) -> tuple[PlanResult, list[PlanResult]]:
    """Grid-search α × k% on the validation split: (best row, every row)."""
    questions = run.recipe.validation[:n_validation]
    rows = [
        measure(
            run,
            questions,
            run.plan(positions, alpha, k, method, intervention, rank_by),
            method,
            positions=positions,
            rank_by=rank_by,
            intervention=intervention,
            k_percent=k,
            alpha=alpha,
        )
        for k in ks
        for alpha in alphas
    ]
    return best(rows), rows


def search_budget(
    run: SteeringRun,
    budget: float,
    method: str,
    grid: dict[str, list],
    n_validation: int | None,
) -> tuple[PlanResult, list[PlanResult]]:
    """The most successful plan on the validation split whose KL per neutral token is at most
    `budget`: (best row, every row measured). `grid` holds the candidates' `positions`,
    `rank_by`, `intervention`, `k_percent` and `alpha` lists.

    KL is cheap (one teacher-forced pass of the neutral prompts), success is not (answers
    generated and judged), so every grid point's KL is measured first and, per (positions,
    ranking, edit, k%), success only for the strongest α inside the budget: more push buys
    more concept until the KL limit, and the frontier is made of those points."""
    questions = run.recipe.validation[:n_validation]
    rows, cheapest = [], None
    for positions, rank_by, intervention, k in itertools.product(
        grid["positions"], grid["rank_by"], grid["intervention"], grid["k_percent"]
    ):
        keys = dict(positions=positions, rank_by=rank_by, intervention=intervention, k_percent=k)
        inside = None
        for alpha in sorted(grid["alpha"]):
            plan = run.plan(positions, alpha, k, method, intervention, rank_by)
            kl = run.retention(plan).kl
            if cheapest is None or kl < cheapest[0]:
                cheapest = (kl, {**keys, "alpha": alpha})
            if kl <= budget:
                inside = (alpha, plan)
        if inside is not None:
            rows.append(measure(run, questions, inside[1], method, **keys, alpha=inside[0]))
    if not rows:
        kl, keys = cheapest
        point = ", ".join(f"{name}={value}" for name, value in keys.items())
        raise GcmEditError(
            f"no plan on the grid is within --kl-budget {budget:g}: the smallest KL was "
            f"{kl:.3f} ({point}); raise the budget or add smaller --alphas / --ks"
        )
    return best(rows), rows


def best_snapshot(
    run: SteeringRun,
    strength,
    snapshots: list[tuple[int, SteeringPlan | None]],
    kl_target: float,
    name: str,
    intervention: str,
    n_validation: int | None,
) -> tuple[int, SteeringPlan, list[PlanResult]] | None:
    """Early stopping for learned plans: each (step, plan) snapshot within `kl_target`
    measured on the validation split; (step, plan, rows) of the best, None when none is
    within the target. `strength` gives the rows' positions, ranking, k% and α."""
    questions = run.recipe.validation[:n_validation]
    keys = dict(positions=strength.positions, rank_by=strength.rank_by)
    keys |= dict(k_percent=strength.k_percent, alpha=strength.alpha)
    rows, kept = [], []
    for step, plan in snapshots:
        if plan is None or run.retention(plan).kl > kl_target * (1 + 1e-6):
            continue
        method = f"{name}, step {step}"
        rows.append(measure(run, questions, plan, method, intervention=intervention, **keys))
        kept.append((step, plan))
    if not rows:
        return None
    step, plan = kept[rows.index(best(rows))]
    return step, plan, rows
