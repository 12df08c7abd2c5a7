"""bench/distill.py's figures over seeds: each variant's mean and range, and the record of its
spread that an export's card states (gcm_edit/evaluation/spreads.json)."""

from __future__ import annotations

import datetime as dt
import shlex

from gcm_edit.tables import Column, ResultTable

SPREAD = {  # figure: the row's field, the number taken from it, its format
    "success": ("success", "rate", ".0%"),
    "prompted": ("prompted success", "rate", ".0%"),
    "success, other forms": ("success (forms)", "rate", ".0%"),
    "prompted, other forms": ("prompted (forms)", "rate", ".0%"),
    "KL/token": ("kl", None, ".3f"),
    "facts": ("facts", "k", ".1f"),
}


def seeds_of(rows: list[dict]) -> dict[str, list[dict]]:
    """Each variant's rows, one per seed."""
    grouped: dict[str, list[dict]] = {}
    for r in rows:
        grouped.setdefault(r["variant"], []).append(r)
    return grouped


def record(rows: list[dict], argv: list[str]) -> None:
    """Each variant's spread over its seeds, for the card of any export of the same command
    (gcm_edit/evaluation/spreads.json)."""
    from gcm_edit.evaluation.spread import SeedSpread, Spread, record_spread

    def rates(runs: list[dict], field: str) -> Spread | None:
        values = [(r[field] or {}).get("rate") for r in runs]
        return None if None in values else Spread.of(values)

    by_variant = seeds_of(rows)
    command = shlex.join(["bench/distill.py", *argv])
    for runs in by_variant.values():
        (key,) = {r["spread key"] for r in runs}  # the seed is all that differs
        spread = SeedSpread(
            seeds=len(runs),
            success=rates(runs, "success"),
            prompted=rates(runs, "prompted success"),
            forms_success=rates(runs, "success (forms)"),
            forms_prompted=rates(runs, "prompted (forms)"),
            measured=dt.date.today().isoformat(),
            command=command,
        )
        record_spread(key, spread)


def spread(runs: list[dict], field: str, part: str | None, fmt: str) -> str:
    """Mean (min–max) of one figure over a variant's seeds; "-" where the variant lacks it
    (no prompting reference, no second split)."""
    from gcm_edit.evaluation.spread import Spread

    values = [r[field] if part is None else (r[field] or {}).get(part) for r in runs]
    if any(v is None for v in values):
        return "-"
    s = Spread.of(values)
    return f"{s.mean:{fmt}} ({s.low:{fmt}}–{s.high:{fmt}})"


def spread_table(concept: str, rows: list[dict]) -> ResultTable:
    """Each variant's mean and range over its seeds, per figure."""
    by_variant = seeds_of(rows)
    columns = [
        Column("variant", lambda item: item[0]),
        Column("seeds", lambda item: len(item[1])),
        *(
            Column(f"{name}: mean (range)", lambda item, how=how: spread(item[1], *how))
            for name, how in SPREAD.items()
        ),
    ]
    return ResultTable(f"{concept}: over seeds", columns, list(by_variant.items()))
