"""Rates carry their 95% Wilson interval (reference values from the closed form)."""

from __future__ import annotations

import pytest

from gcm_edit.evaluation.rates import Rate, wilson


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [
        (0, 10, 0.0, 0.2775),
        (5, 10, 0.2366, 0.7634),
        (10, 10, 0.7225, 1.0),
        (14, 24, 0.3884, 0.7554),
    ],
)
def test_wilson_reference_values(k, n, low, high):
    got = wilson(k, n)
    assert got == pytest.approx((low, high), abs=1e-4)


def test_rate_figures_and_format():
    rate = Rate.of([True, False, True, True])
    assert (rate.k, rate.n, rate.rate) == (3, 4, 0.75)
    assert format(rate, "short") == "75%"
    assert str(rate) == f"75% [{rate.low:.0%}–{rate.high:.0%}]"
    assert rate.model_dump() == {"k": 3, "n": 4, "rate": 0.75, "low": rate.low, "high": rate.high}
    assert Rate.model_validate(rate.model_dump()) == rate  # manifest round trip


def test_separation_is_about_overlapping_intervals():
    assert Rate(k=23, n=24).separated_from(Rate(k=5, n=24))
    assert not Rate(k=15, n=16).separated_from(Rate(k=14, n=16))  # 94% vs 88%: one answer
    assert wilson(0, 0) == (0.0, 1.0)
