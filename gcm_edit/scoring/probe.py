"""`probe`: ITI-style baseline, a logistic probe per head on its final-token activation.

Samples: z[l,h] at the last token of p_orig ⊕ r_orig (label 0) and p_contrast ⊕ r_contrast
(label 1). Heads are ranked by cross-validated held-out accuracy (folds split by pair, so
both sides of a pair are held out together). This is correlational: it finds heads that
*encode* the concept, which is what GCM's causal scores are compared against.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gcm_edit.errors import GcmEditError
from gcm_edit.model.batches import TokenBatch
from gcm_edit.model.heads import HeadGeometry, edit_head_inputs
from gcm_edit.pairs.contrastive import Pair
from gcm_edit.scoring.engine import Scorer

FOLDS = 5
L2 = 0.1  # ridge on standardised features: keeps few-sample probes finite when separable
NEWTON_STEPS = 25


@dataclass
class ProbeBatch:
    tokens: TokenBatch  # rows [0, B): orig runs; [B, 2B): contrast runs
    pairs: torch.Tensor  # [B] pair indices

    def to(self, device) -> ProbeBatch:
        return ProbeBatch(self.tokens.to(device), self.pairs.to(device))


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


def cross_validated_accuracy(
    features: torch.Tensor, folds: int = FOLDS, seed: int = 0
) -> torch.Tensor:
    """features: [pairs, 2, probes, d] (side 0 = orig, 1 = contrast) → held-out score [probes].

    Score = held-out accuracy + (mean held-out probability of the true class) / (n + 1):
    the second term is below one sample's worth of accuracy, so it only breaks ties.
    """
    n_pairs = features.shape[0]
    if n_pairs < 2:
        raise GcmEditError("--method probe needs at least 2 pairs for held-out accuracy")
    folds = min(folds, n_pairs)
    order = torch.randperm(n_pairs, generator=torch.Generator().manual_seed(seed))
    correct = torch.zeros(features.shape[2], dtype=torch.float64)
    prob_true = torch.zeros_like(correct)
    y_side = torch.tensor([0.0, 1.0], dtype=torch.float64)
    for fold in range(folds):
        held = order[fold::folds]
        kept = order[torch.isin(order, held, invert=True)]
        train = features[kept].double()  # [n, 2, probes, d]
        mean = train.mean((0, 1))
        std = train.std((0, 1)).clamp(min=1e-6)

        def design(rows: torch.Tensor, mean=mean, std=std) -> torch.Tensor:
            return ((rows.double() - mean) / std).flatten(0, 1).transpose(0, 1)  # [probes, n, d]

        y_train = y_side.repeat(len(kept))
        w = fit_logistic(design(train), y_train)
        x_held = design(features[held])
        x_held = torch.cat([x_held, torch.ones(*x_held.shape[:2], 1, dtype=x_held.dtype)], -1)
        p = torch.sigmoid(torch.einsum("knd,kd->kn", x_held, w))
        y_held = y_side.repeat(len(held))
        correct += ((p > 0.5).double() == y_held).sum(-1)
        prob_true += torch.where(y_held.bool(), p, 1 - p).sum(-1)
    n = 2 * n_pairs
    return correct / n + (prob_true / n) / (n + 1)


class ProbeScorer(Scorer):
    def __init__(self, model, pairs: list[Pair], pad_id: int, seed: int):
        g = HeadGeometry.of(model.config)
        super().__init__(model, pairs, pad_id, (len(pairs), 2, g.n_layers, g.n_heads * g.head_dim))
        self.seed = seed

    def collate(self, item: list[int]) -> ProbeBatch:
        pairs = [self.pairs[i] for i in item]
        tokens = TokenBatch.build(
            [p.prompt_orig for p in pairs] + [p.prompt_contrast for p in pairs],
            [p.response_orig for p in pairs] + [p.response_contrast for p in pairs],
            self.pad_id,
        )
        return ProbeBatch(tokens, torch.tensor(item))

    def contribution(self, batch: ProbeBatch) -> torch.Tensor:
        """Final-token z of every head, scattered into this batch's rows of `total`."""
        last = batch.tokens.attention_mask.sum(1) - 1
        rows = torch.arange(last.shape[0], device=last.device)
        finals: dict[int, torch.Tensor] = {}

        def record(layer: int, z: torch.Tensor) -> None:
            finals[layer] = z[rows, last].float()

        with edit_head_inputs(self.model, record):
            batch.tokens.run(self.model)
        z = torch.stack([finals[layer] for layer in range(self.geometry.n_layers)], dim=1)
        out = torch.zeros(self.total.shape, device=self.device)
        n = len(batch.pairs)
        out[batch.pairs, 0] = z[:n]
        out[batch.pairs, 1] = z[n:]
        return out

    def finish(self, total: torch.Tensor) -> torch.Tensor:
        g = self.geometry
        features = total.cpu().view(len(self.pairs), 2, g.n_total, g.head_dim)
        return cross_validated_accuracy(features, seed=self.seed).view(g.n_layers, g.n_heads)
