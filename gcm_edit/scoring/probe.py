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
from gcm_edit.model.logistic import FOLDS, out_of_fold
from gcm_edit.pairs.contrastive import Pair
from gcm_edit.scoring.engine import Scorer


@dataclass
class ProbeBatch:
    tokens: TokenBatch  # rows [0, B): orig runs; [B, 2B): contrast runs
    pairs: torch.Tensor  # [B] pair indices

    def to(self, device) -> ProbeBatch:
        return ProbeBatch(self.tokens.to(device), self.pairs.to(device))


def cross_validated_accuracy(
    features: torch.Tensor, folds: int = FOLDS, seed: int = 0
) -> torch.Tensor:
    """features: [pairs, 2, probes, d] (side 0 = orig, 1 = contrast) → held-out score [probes].

    Score = held-out accuracy + (mean held-out probability of the true class) / (n + 1):
    the second term is below one sample's worth of accuracy, so it only breaks ties.
    """
    if features.shape[0] < 2:
        raise GcmEditError("--method probe needs at least 2 pairs for held-out accuracy")
    p = out_of_fold(features, folds, seed)  # [pairs, 2, probes]
    p_true = torch.stack([1 - p[:, 0], p[:, 1]], dim=1)
    n = 2 * features.shape[0]
    return (p_true > 0.5).double().sum((0, 1)) / n + (p_true.sum((0, 1)) / n) / (n + 1)


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
