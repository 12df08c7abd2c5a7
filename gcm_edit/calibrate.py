"""`gcm-edit calibrate`: measure δ positions × α on the validation split (never the held-out one).

This is how the defaults in settings.py were chosen; users run it for their own model/recipe.
"""

from __future__ import annotations

import csv

from rich.table import Table

from gcm_edit.evaluate import judge_answers
from gcm_edit.pipeline import Run, console
from gcm_edit.report import print_tables
from gcm_edit.settings import CalibrateSettings

COLUMNS = [
    "positions",
    "alpha",
    "n_heads",
    "success",
    "concept",
    "fluent",
    "repeated_ngram_rate",
    "median_perplexity",
]


def calibrate(settings: CalibrateSettings) -> list[dict]:
    run = Run(settings)
    questions = run.recipe.validation[: settings.n_validation]
    candidates = [(None, 0.0)] + [(p, a) for p in settings.positions_grid for a in settings.alphas]
    rows = []
    for positions, alpha in candidates:
        plan = None if positions is None else run.plan(positions, alpha)
        label = "validation (base)" if plan is None else f"validation ({positions}, α={alpha})"
        texts = run.answers(label, questions, plan)
        ev = judge_answers(run.model, run.tokenizer, run.recipe, questions, texts)
        rows.append(
            {
                "positions": positions or "base",
                "alpha": alpha,
                "n_heads": 0 if plan is None else len(plan.steered_heads),
                "success": ev.success_rate,
                "concept": ev.concept_rate,
                "fluent": ev.fluent_rate,
                "repeated_ngram_rate": round(ev.repeated_ngram_rate, 4),
                "median_perplexity": round(ev.median_perplexity, 2),
            }
        )
    settings.out.parent.mkdir(parents=True, exist_ok=True)
    with open(settings.out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    table = Table(title=f"{run.recipe.name}: validation split ({len(questions)} questions)")
    for header in (
        "positions",
        "α",
        "heads",
        "success",
        "concept",
        "fluent",
        "rep. bigrams",
        "ppl",
    ):
        table.add_column(header, justify="right")
    for row in rows:
        table.add_row(
            *(
                f"{row[c]:.0%}" if c in ("success", "concept", "fluent") else str(row[c])
                for c in COLUMNS
            )
        )
    best = max(rows[1:], key=lambda r: (r["success"], r["fluent"], -r["alpha"]))
    print_tables(table)
    console.print(
        f"best on validation: positions={best['positions']} α={best['alpha']} "
        f"(success {best['success']:.0%}); table written to {settings.out}"
    )
    return rows
