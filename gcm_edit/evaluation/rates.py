"""A rate is a count out of n, never a bare percentage: it carries its 95% Wilson interval,
so every table, manifest and model card shows how much one answer more or less would move it.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, computed_field

Z95 = 1.959963984540054  # two-sided 95% normal quantile


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials (well-behaved at 0, n and small n)."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


class Rate(BaseModel):
    """k of n, with its 95% Wilson interval; formats as "58% [39–76]"."""

    k: int
    n: int

    @classmethod
    def of(cls, flags: list[bool]) -> Rate:
        return cls(k=sum(map(bool, flags)), n=len(flags))

    @computed_field
    @property
    def rate(self) -> float:
        return self.k / self.n if self.n else 0.0

    @computed_field
    @property
    def low(self) -> float:
        return wilson(self.k, self.n)[0]

    @computed_field
    @property
    def high(self) -> float:
        return wilson(self.k, self.n)[1]

    def separated_from(self, other: Rate) -> bool:
        """True when the two 95% intervals do not overlap (a conservative difference test)."""
        return self.low > other.high or other.low > self.high

    def __format__(self, spec: str) -> str:
        if spec == "short":
            return f"{self.rate:.0%}"
        return f"{self.rate:.0%} [{self.low:.0%}–{self.high:.0%}]"

    def __str__(self) -> str:
        return format(self, "")
