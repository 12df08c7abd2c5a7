"""Ridge logistic probes on paired samples (side 0: without the concept, side 1: with it),
fitted by Newton's method and judged out of fold: the probe baseline's head scores and a
learned concept judge both stand on these."""

from __future__ import annotations

from dataclasses import dataclass

import torch

FOLDS = 5
L2 = 0.1  # ridge on standardised features: keeps few-sample probes finite when separable
NEWTON_STEPS = 25


def fit_logistic(x: torch.Tensor, y: torch.Tensor, l2: float = L2) -> torch.Tensor:
    """Ridge logistic regression for many probes at once by Newton's method.

    x: [probes, n, d] (a bias column is appended), y: [n] in {0, 1}; returns w: [probes, d+1].
    The objective is strictly convex, so a fixed number of Newton steps converges.
    """
    x = torch.cat([x, torch.ones(*x.shape[:2], 1, dtype=x.dtype)], dim=-1)
    d = x.shape[-1]
    ridge = l2 * torch.eye(d, dtype=x.dtype)
    ridge[-1, -1] = 0.0  # the bias is not penalised
    w = torch.zeros(x.shape[0], d, dtype=x.dtype)
    for _ in range(NEWTON_STEPS):
        p = torch.sigmoid(torch.einsum("knd,kd->kn", x, w))
        grad = torch.einsum("knd,kn->kd", x, p - y) + w @ ridge
        hess = torch.einsum("knd,kn,kne->kde", x, p * (1 - p), x) + ridge
        w = w - torch.linalg.solve(hess, grad)
    return w


@dataclass
class PairedProbe:
    """Probes fitted on standardised paired features; `predict` applies the same scaling."""

    mean: torch.Tensor  # [probes, d]
    std: torch.Tensor  # [probes, d]
    w: torch.Tensor  # [probes, d + 1], the bias last

    @classmethod
    def fit(cls, features: torch.Tensor, l2: float = L2) -> PairedProbe:
        """features: [pairs, 2, probes, d]; side 0 is labelled 0, side 1 is labelled 1."""
        train = features.double()
        mean, std = train.mean((0, 1)), train.std((0, 1)).clamp(min=1e-6)
        y = torch.tensor([0.0, 1.0], dtype=torch.float64).repeat(train.shape[0])
        design = ((train - mean) / std).flatten(0, 1).transpose(0, 1)  # [probes, n, d]
        return cls(mean, std, fit_logistic(design, y, l2))

    def predict(self, rows: torch.Tensor) -> torch.Tensor:
        """rows: [..., probes, d] → P(side 1) [..., probes]."""
        x = (rows.double() - self.mean) / self.std
        return torch.sigmoid((x * self.w[:, :-1]).sum(-1) + self.w[:, -1])


def out_of_fold(features: torch.Tensor, folds: int = FOLDS, seed: int = 0) -> torch.Tensor:
    """features: [pairs, 2, probes, d] → P(side 1) [pairs, 2, probes] of each sample from the
    probe fitted without its fold; folds split by pair, so both sides are held out together."""
    n_pairs = features.shape[0]
    folds = min(folds, n_pairs)
    order = torch.randperm(n_pairs, generator=torch.Generator().manual_seed(seed))
    p = torch.zeros(features.shape[:3], dtype=torch.float64)
    for fold in range(folds):
        held = order[fold::folds]
        kept = order[torch.isin(order, held, invert=True)]
        p[held] = PairedProbe.fit(features[kept]).predict(features[held])
    return p


def auc(negatives: torch.Tensor, positives: torch.Tensor) -> float:
    """Area under the ROC curve: P(a positive scores above a negative), ties counted half."""
    above = (positives[:, None] > negatives[None, :]).double().mean()
    ties = (positives[:, None] == negatives[None, :]).double().mean()
    return float(above + ties / 2)
