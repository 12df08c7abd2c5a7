"""Capability retention: the shipped factual questions (inputs/factual.jsonl), answered by
the base and the steered model; an answer counts when it contains an accepted answer as a
whole word. What the base knew and the steered model lost is the edit's collateral."""

from __future__ import annotations

import re

from pydantic import BaseModel

from gcm_edit.evaluation.rates import Rate
from gcm_edit.inputs.factual import FactualItem
from gcm_edit.model.generation import Decoding
from gcm_edit.tables import Column, ResultTable

# Factual answers are short; the same greedy decoding as every evaluation otherwise.
FACTUAL_DECODING = Decoding(max_new_tokens=24)


def is_answered(text: str, item: FactualItem) -> bool:
    return any(
        re.search(rf"(?<![\w.]){re.escape(answer)}(?![\w]|\.\d)", text, re.IGNORECASE)
        for answer in item.answers
    )


class Capability(BaseModel):
    """Factual questions answered, base vs steered, and how many the base knew and lost;
    `prompted`: the base asked with the recipe's directive, what prompting costs in facts."""

    base: Rate
    steered: Rate
    lost: int  # answered by the base, not by the steered model
    prompted: Rate | None = None

    @classmethod
    def judge(
        cls,
        items: tuple[FactualItem, ...],
        base: list[str],
        steered: list[str],
        prompted: list[str] | None = None,
    ) -> Capability:
        def answered(texts: list[str]) -> list[bool]:
            return [is_answered(t, item) for t, item in zip(texts, items, strict=True)]

        base_ok, steered_ok = answered(base), answered(steered)
        lost = sum(b and not s for b, s in zip(base_ok, steered_ok, strict=True))
        return cls(
            base=Rate.of(base_ok),
            steered=Rate.of(steered_ok),
            lost=lost,
            prompted=None if prompted is None else Rate.of(answered(prompted)),
        )

    @property
    def kept_share(self) -> float:
        """Steered accuracy relative to the base's (the ≥ 95% target is on this)."""
        return self.steered.rate / self.base.rate if self.base.rate else 0.0

    @property
    def kept_of_prompted(self) -> float | None:
        """Steered accuracy relative to the prompted base's: does the edit cost more facts
        than asking with the directive does?"""
        if self.prompted is None:
            return None
        return self.steered.rate / self.prompted.rate if self.prompted.rate else 0.0

    def table(self) -> ResultTable:
        columns = [
            Column("factual questions answered: base", lambda r: r.base),
            Column("steered", lambda r: r.steered),
            Column("steered / base", lambda r: r.kept_share, ".0%"),
            Column("lost", lambda r: r.lost),
        ]
        if self.prompted is not None:
            columns += [
                Column("prompted", lambda r: r.prompted),
                Column("steered / prompted", lambda r: r.kept_of_prompted, ".0%"),
            ]
        return ResultTable(f"Capability on {self.base.n} factual questions", columns, [self])
