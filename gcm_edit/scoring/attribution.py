"""`attribution` (default): s[l,h] = (1/N) Σ_pairs Σ_t ∇_{z[l,h,t]} M · δ[l,h].

Σ_t ∇_z M is the gradient of M w.r.t. a zero vector added to z at every position, so one
forward of both responses plus one backward scores every head; because δ is shared by all
pairs, summing M over a batch before the backward gives the same sum of per-pair terms.
"""

from __future__ import annotations

import torch

from gcm_edit.model.heads import add_to_heads
from gcm_edit.pairs.contrastive import Pair
from gcm_edit.scoring.engine import Scorer
from gcm_edit.scoring.metric import collate_pairs, mediation_metric


class AttributionPatching(Scorer):
    def __init__(self, model, pairs: list[Pair], pad_id: int, deltas: torch.Tensor):
        super().__init__(model, pairs, pad_id)
        self.register_buffer("deltas", deltas.float())

    def collate(self, item: list[int]):
        return collate_pairs([self.pairs[i] for i in item], self.pad_id)

    def contribution(self, batch) -> torch.Tensor:
        g = self.geometry
        with torch.enable_grad():
            probe = torch.zeros(
                g.n_layers, g.n_heads * g.head_dim, device=self.device, requires_grad=True
            )
            with add_to_heads(self.model, probe):  # the backward too: it may recompute layers
                metric = mediation_metric(self.model, batch)
                (grad,) = torch.autograd.grad(metric.sum(), probe)
        return (grad.view(g.n_layers, g.n_heads, g.head_dim) * self.deltas).sum(-1)
