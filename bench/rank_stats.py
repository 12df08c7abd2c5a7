"""Agreement between two score tables: rank correlation and overlap of their top-k% heads."""

from __future__ import annotations

import torch

from gcm_edit.steering.plan import select_heads


def ranks(values: torch.Tensor) -> torch.Tensor:
    """Ranks 1..n of a flat tensor, ties given their average rank."""
    flat = values.flatten().double()
    order = torch.argsort(flat, stable=True)
    ranked = torch.empty_like(flat)
    ranked[order] = torch.arange(1, flat.numel() + 1, dtype=flat.dtype)
    for value in torch.unique(flat):
        tied = flat == value
        if tied.sum() > 1:
            ranked[tied] = ranked[tied].mean()
    return ranked


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman's ρ: Pearson correlation of the ranks."""
    ra, rb = ranks(a), ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float((ra * rb).sum() / (ra.norm() * rb.norm()))


def top_overlap(a: torch.Tensor, b: torch.Tensor, k_percent: float) -> float:
    """Share of the top-k% heads by `a` that are also top-k% by `b` ([layers, heads] each)."""
    top_a, top_b = set(select_heads(a, k_percent)), set(select_heads(b, k_percent))
    return len(top_a & top_b) / len(top_a)
