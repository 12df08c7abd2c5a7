"""`gcm-edit calibrate`: measure δ positions × α on the validation split (never the held-out one).

This is how the defaults in settings.py were chosen; users run it for their own model/recipe.
"""

from __future__ import annotations

from gcm_edit.commands.candidates import measure
from gcm_edit.commands.settings import CalibrateSettings
from gcm_edit.commands.steering_run import SteeringRun
from gcm_edit.console import console
from gcm_edit.evaluation.plan_results import (
    PlanResult,
    best,
    results_table,
    separation_note,
    write_csv,
)
from gcm_edit.output import check_output_file
from gcm_edit.tables import print_tables


def calibrate(settings: CalibrateSettings) -> list[PlanResult] | None:
    """Every row measured; None in the extra processes of a multi-device run (they score)."""
    run = SteeringRun(settings)
    check_output_file(settings.out, run.inputs(), settings.force)
    for positions in settings.positions_grid:  # every process of a multi-device run scores
        run.scores(positions, settings.method)
    if not run.is_rank_zero:
        return None
    questions = run.recipe.validation[: settings.n_validation]
    rows = [measure(run, questions, None, "base")]
    rows += [
        measure(
            run,
            questions,
            run.plan(positions, alpha, settings.k_percent, settings.method, settings.intervention),
            settings.method,
            positions=positions,
            k_percent=settings.k_percent,
            alpha=alpha,
        )
        for positions in settings.positions_grid
        for alpha in settings.alphas
    ]
    write_csv(rows, settings.out)
    title = f"{run.recipe.name}: validation split ({len(questions)} q)"
    print_tables(results_table(title, rows))
    top = best(rows[1:])
    console.print(
        f"best on validation: positions={top.positions} α={top.alpha} "
        f"(success {top.success}, KL {top.kl:.4f}); table written to {settings.out}"
    )
    if note := separation_note(rows[1:], "setting"):
        console.print(f"[yellow]note:[/] {note}")
    return rows
