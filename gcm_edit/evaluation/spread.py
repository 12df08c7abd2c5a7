"""How much an export's held-out figures move from seed to seed, as measured.

One export is one draw: its teacher samples, batch order, neutral draws and map start all
follow `--seed`. `bench/distill.py --seeds N --record` exports the same command over seeds
0..N-1 and records the spread here (spreads.json, shipped with the package), keyed by what
the figures depend on: the model, the recipe's bytes and the export's settings other than
its seed and where it writes. An export whose key has a record states it in its card.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from gcm_edit.cache import stable_hash
from gcm_edit.tables import Column, ResultTable

SPREADS = Path(__file__).with_name("spreads.json")


class Spread(BaseModel):
    """Mean, lowest and highest of one rate over the seeds."""

    mean: float
    low: float
    high: float

    @classmethod
    def of(cls, values: list[float]) -> Spread:
        return cls(mean=sum(values) / len(values), low=min(values), high=max(values))

    def __str__(self) -> str:
        return f"{self.mean:.0%} ({self.low:.0%}–{self.high:.0%})"


class SeedSpread(BaseModel):
    """Held-out success of the export and of the prompted model over `seeds` seeds, on the
    recipe's held-out split and (where it has one) its other-forms split."""

    seeds: int
    success: Spread
    prompted: Spread | None = None
    forms_success: Spread | None = None
    forms_prompted: Spread | None = None
    measured: str  # the date
    command: str  # what measured it

    def table(self) -> ResultTable:
        splits = [("held-out", self.success, self.prompted)]
        if self.forms_success is not None:
            splits.append(("other forms", self.forms_success, self.forms_prompted))
        columns = [
            Column("split", lambda r: r[0]),
            Column(f"success over {self.seeds} seeds: mean (range)", lambda r: str(r[1])),
            Column("prompted", lambda r: "-" if r[2] is None else str(r[2])),
        ]
        return ResultTable("Seed to seed", columns, splits)


def spread_key(model: str, recipe_sha256: str, settings: dict) -> str:
    """What a recorded spread applies to; `settings` without seed and output options."""
    return stable_hash("seed-spread", model, recipe_sha256, settings)


def measured_spread(key: str) -> SeedSpread | None:
    if not SPREADS.is_file():
        return None
    entry = json.loads(SPREADS.read_text()).get(key)
    return None if entry is None else SeedSpread(**entry)


def record_spread(key: str, spread: SeedSpread) -> None:
    """Add or replace one record (bench/distill.py --record)."""
    records = json.loads(SPREADS.read_text()) if SPREADS.is_file() else {}
    records[key] = spread.model_dump()
    SPREADS.write_text(json.dumps(records, indent=1, sort_keys=True) + "\n")
