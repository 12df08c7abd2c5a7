"""Candidate plans measured on the validation split (never the held-out one).

`calibrate` (positions × α), `sweep` (method × k × α) and `export --alpha auto` all score a
candidate the same way: success (concept ∧ fluent) on the validation questions, with
KL(base ‖ steered) on neutral prompts as the tie-breaker.
"""

from __future__ import annotations

import csv
from pathlib import Path

from rich.table import Table

from gcm_edit.evaluation.answers import judge_answers
from gcm_edit.commands.run import Run
from gcm_edit.steering.plan import SteeringPlan
from gcm_edit.evaluation.retention import measure_retention

COLUMNS = [
    "method",
    "positions",
    "k_percent",
    "alpha",
    "n_heads",
    "success",
    "concept",
    "fluent",
    "repeated_ngram_rate",
    "median_perplexity",
    "grade",
    "kl",
]
RATES = ("success", "concept", "fluent")


def measure(run: Run, questions: list[str], plan: SteeringPlan | None, **keys) -> dict:
    """One row: `keys` (method, positions, k_percent, alpha) plus what the plan achieved."""
    keys = {"positions": "", "k_percent": 0.0, "alpha": 0.0, **keys}
    label = "validation (base)"
    if plan is not None:
        label = (
            f"validation ({keys['method']}, {keys['positions']}, k={keys['k_percent']:g}%, "
            f"α={keys['alpha']:g})"
        )
    texts = run.answers(label, questions, plan)
    ev = judge_answers(run.model, run.tokenizer, run.recipe, run.judge, questions, texts)
    kl = 0.0 if plan is None else measure_retention(run.model, run.tokenizer, plan).kl
    return {
        **{column: keys[column] for column in COLUMNS[:4]},
        "n_heads": 0 if plan is None else len(plan.steered_heads),
        "success": ev.success_rate,
        "concept": ev.concept_rate,
        "fluent": ev.fluent_rate,
        "repeated_ngram_rate": round(ev.repeated_ngram_rate, 4),
        "median_perplexity": round(ev.median_perplexity, 2),
        "grade": round(ev.grade, 4),
        "kl": round(kl, 5),
    }


def best(rows: list[dict]) -> dict:
    """Highest success; ties go to lower KL, then to fewer heads and smaller α."""
    return max(rows, key=lambda r: (r["success"], -r["kl"], -r["n_heads"], -r["alpha"]))


def write_rows(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def rows_table(title: str, rows: list[dict]) -> Table:
    table = Table(title=title)
    headers = ["method", "positions", "k%", "α", "heads", "success", "concept", "fluent"]
    headers += ["rep. bigrams", "ppl", "grade", "KL"]
    for header in headers:
        table.add_column(header, justify="right")
    for row in rows:
        table.add_row(*(f"{row[c]:.0%}" if c in RATES else str(row[c]) for c in COLUMNS))
    return table


def choose_alpha_k(
    run: Run, positions: str, alphas: list[float], ks: list[float], n_validation: int | None
) -> tuple[dict, list[dict]]:
    """Grid-search α × k% on the validation split: (best row, every row)."""
    questions = run.recipe.validation[:n_validation]
    method = run.settings.method
    rows = [
        measure(
            run,
            questions,
            run.plan(positions, alpha, k),
            method=method,
            positions=positions,
            k_percent=k,
            alpha=alpha,
        )
        for k in ks
        for alpha in alphas
    ]
    return best(rows), rows
