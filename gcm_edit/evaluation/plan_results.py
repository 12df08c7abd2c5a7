"""What one candidate plan achieved on the validation split: the row that `calibrate`,
`sweep`, `--alpha auto`/`--k auto` and the learned-scales rival all measure and compare."""

from __future__ import annotations

import csv
from pathlib import Path

from pydantic import BaseModel

from gcm_edit.evaluation.rates import Rate
from gcm_edit.tables import Column, ResultTable


class PlanResult(BaseModel):
    method: str  # a scoring method, "all" (every head) or "base" (no steering)
    positions: str = ""  # δ positions ("" for the base model)
    rank_by: str = "effect"  # effect | effect-per-kl (steering/collateral.py)
    intervention: str = "additive"
    k_percent: float = 0.0
    alpha: float = 0.0
    n_heads: int = 0
    success: Rate  # concept ∧ fluent ∧ relevant
    concept: Rate
    fluent: Rate
    relevant: Rate
    median_perplexity: float
    grade: float
    kl: float  # KL(base ‖ steered) per prompt token on the neutral prompts

    def flat(self) -> dict:
        """One CSV row: each rate as its value and 95% interval."""
        row = {}
        for name, value in self.model_dump().items():
            if isinstance(value, dict):  # a Rate
                row |= {
                    name: value["rate"],
                    f"{name}_low": value["low"],
                    f"{name}_high": value["high"],
                }
            else:
                row[name] = value
        return row


# The judged rates of any row with success, concept, fluent and relevant Rates.
RATE_COLUMNS = [
    Column("success", lambda r: r.success),
    Column("concept", lambda r: r.concept, "short"),
    Column("fluent", lambda r: r.fluent, "short"),
    Column("relevant", lambda r: r.relevant, "short"),
]
COLUMNS = [
    Column("method", lambda r: r.method),
    Column("positions", lambda r: r.positions),
    Column("ranked by", lambda r: r.rank_by if r.method != "base" else ""),
    Column("edit", lambda r: r.intervention if r.method != "base" else ""),
    Column("k%", lambda r: r.k_percent, "g"),
    Column("α", lambda r: r.alpha, "g"),
    Column("heads", lambda r: r.n_heads),
    *RATE_COLUMNS,
    Column("ppl", lambda r: r.median_perplexity, ".1f"),
    Column("grade", lambda r: r.grade, ".2f"),
    Column("KL", lambda r: r.kl, ".3f"),
]


def results_table(title: str, rows: list[PlanResult]) -> ResultTable:
    return ResultTable(title, COLUMNS, rows)


def ranked(rows: list[PlanResult]) -> list[PlanResult]:
    """Best first: highest success; ties go to lower KL, then to fewer heads and smaller α."""
    return sorted(rows, key=lambda r: (-r.success.rate, r.kl, r.n_heads, r.alpha))


def best(rows: list[PlanResult]) -> PlanResult:
    return ranked(rows)[0]


def on_frontier(rows: list[PlanResult]) -> list[bool]:
    """Per row: is it non-dominated in (success ↑, KL ↓)? A row is dominated when another has
    at least its success at no more KL, and is strictly better in one of the two."""

    def dominates(a: PlanResult, b: PlanResult) -> bool:
        s_a, s_b = a.success.rate, b.success.rate
        return s_a >= s_b and a.kl <= b.kl and (s_a > s_b or a.kl < b.kl)

    return [not any(dominates(other, row) for other in rows) for row in rows]


def frontier_table(title: str, rows: list[PlanResult], chosen: PlanResult | None = None):
    """The non-dominated rows, cheapest first; `chosen` marked."""
    front = sorted(
        (row for row, keep in zip(rows, on_frontier(rows), strict=True) if keep),
        key=lambda r: r.kl,
    )
    mark = Column("", lambda r: "◀ chosen" if chosen is not None and r == chosen else "")
    return ResultTable(title, [*COLUMNS, mark], front)


def separation_note(rows: list[PlanResult], what: str) -> str | None:
    """A warning when the best candidate's success is not separated from the runner-up's
    (their 95% intervals overlap): the split is too small to tell them apart."""
    if len(rows) < 2:
        return None
    top, runner_up = ranked(rows)[:2]
    if top.success.separated_from(runner_up.success):
        return None
    return (
        f"the best {what} (success {top.success}) is not separated from the runner-up "
        f"(α={runner_up.alpha:g}, k={runner_up.k_percent:g}%: {runner_up.success}); "
        "a larger validation split would be needed to tell them apart"
    )


def write_csv(rows: list[PlanResult], path: Path, **extra: list) -> None:
    """Every field, unformatted, one row per plan; `extra` columns (one value per row) last."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        flat = [row.flat() for row in rows]
        for name, values in extra.items():
            for row, value in zip(flat, values, strict=True):
                row[name] = value
        writer = csv.DictWriter(f, fieldnames=list(flat[0]))
        writer.writeheader()
        writer.writerows(flat)
