"""What one candidate plan achieved on the validation split: the row that `calibrate`,
`sweep`, `--alpha auto`/`--k auto` and the learned-scales rival all measure and compare."""

from __future__ import annotations

import csv
from pathlib import Path

from pydantic import BaseModel

from gcm_edit.tables import Column, ResultTable


class PlanResult(BaseModel):
    method: str  # a scoring method, "all" (every head) or "base" (no steering)
    positions: str = ""  # δ positions ("" for the base model)
    k_percent: float = 0.0
    alpha: float = 0.0
    n_heads: int = 0
    success: float  # concept ∧ fluent
    concept: float
    fluent: float
    repeated_ngram_rate: float
    median_perplexity: float
    grade: float
    kl: float  # KL(base ‖ steered) per token on the neutral prompts


COLUMNS = [
    Column("method", lambda r: r.method),
    Column("positions", lambda r: r.positions),
    Column("k%", lambda r: r.k_percent, "g"),
    Column("α", lambda r: r.alpha, "g"),
    Column("heads", lambda r: r.n_heads),
    Column("success", lambda r: r.success, ".0%"),
    Column("concept", lambda r: r.concept, ".0%"),
    Column("fluent", lambda r: r.fluent, ".0%"),
    Column("rep. bigrams", lambda r: r.repeated_ngram_rate, ".3f"),
    Column("ppl", lambda r: r.median_perplexity, ".1f"),
    Column("grade", lambda r: r.grade, ".2f"),
    Column("KL", lambda r: r.kl, ".3f"),
]


def results_table(title: str, rows: list[PlanResult]) -> ResultTable:
    return ResultTable(title, COLUMNS, rows)


def best(rows: list[PlanResult]) -> PlanResult:
    """Highest success; ties go to lower KL, then to fewer heads and smaller α."""
    return max(rows, key=lambda r: (r.success, -r.kl, -r.n_heads, -r.alpha))


def write_csv(rows: list[PlanResult], path: Path) -> None:
    """Every field, unformatted, one row per plan."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(PlanResult.model_fields))
        writer.writeheader()
        writer.writerows(row.model_dump() for row in rows)
