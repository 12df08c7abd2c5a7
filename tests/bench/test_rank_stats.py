"""Rank agreement statistics used to compare scoring methods."""

from __future__ import annotations

import pytest
import torch
from rank_stats import ranks, spearman, top_overlap


def test_ranks_average_ties():
    torch.testing.assert_close(
        ranks(torch.tensor([10.0, 30.0, 20.0, 30.0])),
        torch.tensor([1.0, 3.5, 2.0, 3.5], dtype=torch.float64),
    )


def test_spearman_reference_values():
    a = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert spearman(a, a**3) == pytest.approx(1.0)  # any increasing map
    assert spearman(a, -a) == pytest.approx(-1.0)
    # By hand: ranks x = 1..5, y = (2,1,4,3,5): Σd² = 4, ρ = 1 − 6·4 / (5·24) = 0.8
    x = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    y = torch.tensor([20.0, 10.0, 40.0, 30.0, 50.0])
    assert spearman(x, y) == pytest.approx(0.8)


def test_top_overlap():
    a = torch.tensor([[9.0, 8.0, 1.0, 0.0]])
    b = torch.tensor([[9.0, 0.0, 8.0, 1.0]])
    assert top_overlap(a, b, 50) == pytest.approx(0.5)  # {0,1} vs {0,2}
    assert top_overlap(a, a, 50) == 1.0
