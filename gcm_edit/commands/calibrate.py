"""`gcm-edit calibrate`: measure δ positions × α on the validation split (never the held-out one).

This is how the defaults in settings.py were chosen; users run it for their own model/recipe.
"""

from __future__ import annotations

from gcm_edit.commands.run import Run, console, reject_sharding
from gcm_edit.commands.report import print_tables
from gcm_edit.commands.settings import CalibrateSettings
from gcm_edit.commands.candidates import best, measure, rows_table, write_rows


def calibrate(settings: CalibrateSettings) -> list[dict]:
    reject_sharding(settings)
    run = Run(settings)
    questions = run.recipe.validation[: settings.n_validation]
    rows = [measure(run, questions, None, method="base")]
    rows += [
        measure(
            run,
            questions,
            run.plan(positions, alpha),
            method=settings.method,
            positions=positions,
            k_percent=settings.k_percent,
            alpha=alpha,
        )
        for positions in settings.positions_grid
        for alpha in settings.alphas
    ]
    write_rows(rows, settings.out)
    print_tables(rows_table(f"{run.recipe.name}: validation split ({len(questions)} q)", rows))
    top = best(rows[1:])
    console.print(
        f"best on validation: positions={top['positions']} α={top['alpha']} "
        f"(success {top['success']:.0%}, KL {top['kl']:.4f}); table written to {settings.out}"
    )
    return rows
