"""`paper`: the GCM paper's patch of the contrast run into the original run, position by position.

Each row of M's batch (p_orig ⊕ r) has a counterpart run on the contrast prompt with the
same response (p_contrast ⊕ r). Patching head (l, h) means replacing its z at every
position with the counterpart's; attribution patching linearises that:

    s[l,h] = (1/N) Σ_pairs Σ_rows Σ_t ∇_{z[l,h,t]} M · (z_contrast[l,h,t] − z_orig[l,h,t])

Positions only correspond when both prompts have the same number of tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gcm_edit.errors import GcmEditError
from gcm_edit.model.batches import TokenBatch
from gcm_edit.model.heads import edit_head_inputs
from gcm_edit.pairs.contrastive import Pair
from gcm_edit.scoring.engine import Scorer
from gcm_edit.scoring.metric import collate_pairs, mediation_metric


@dataclass
class AlignedBatch:
    orig: TokenBatch  # p_orig ⊕ r_contrast, p_orig ⊕ r_orig
    contrast: TokenBatch  # p_contrast ⊕ r_contrast, p_contrast ⊕ r_orig

    def to(self, device) -> AlignedBatch:
        return AlignedBatch(self.orig.to(device), self.contrast.to(device))


def check_aligned(pairs: list[Pair]) -> None:
    for pair in pairs:
        if len(pair.prompt_orig) != len(pair.prompt_contrast):
            raise GcmEditError(
                f"--method paper patches position by position and needs prompt pairs of equal "
                f"token length; question {pair.question!r} has {len(pair.prompt_orig)} vs "
                f"{len(pair.prompt_contrast)} tokens (use a recipe whose two prompts differ "
                "by a same-length word, or another --method)"
            )


class PositionwisePatching(Scorer):
    def __init__(self, model, pairs: list[Pair], pad_id: int):
        check_aligned(pairs)
        super().__init__(model, pairs, pad_id)

    def collate(self, item: list[int]) -> AlignedBatch:
        pairs = [self.pairs[i] for i in item]
        contrast = TokenBatch.build(
            [p.prompt_contrast for p in pairs] * 2,
            [p.response_contrast for p in pairs] + [p.response_orig for p in pairs],
            self.pad_id,
        )
        return AlignedBatch(collate_pairs(pairs, self.pad_id), contrast)

    def _record(self, batch: TokenBatch) -> torch.Tensor:
        """z of every layer on the contrast run: [layers, rows, T, heads*head_dim]."""
        seen: dict[int, torch.Tensor] = {}

        def record(layer: int, z: torch.Tensor) -> None:
            seen[layer] = z.float()

        with edit_head_inputs(self.model, record):
            batch.run(self.model)
        return torch.stack([seen[layer] for layer in range(self.geometry.n_layers)])

    def contribution(self, batch: AlignedBatch) -> torch.Tensor:
        g = self.geometry
        z_contrast = self._record(batch.contrast)
        z_orig: dict[int, torch.Tensor] = {}  # by layer: recomputation (checkpointing) rewrites
        with torch.enable_grad():
            probe = torch.zeros_like(z_contrast, requires_grad=True)

            def add_probe(layer: int, z: torch.Tensor) -> torch.Tensor:
                z_orig[layer] = z.detach().float()
                return z + probe[layer].to(z)

            with edit_head_inputs(self.model, add_probe):
                metric = mediation_metric(self.model, batch.orig)
            (grad,) = torch.autograd.grad(metric.sum(), probe)
        z_orig_all = torch.stack([z_orig[layer] for layer in range(g.n_layers)])
        shift = (z_contrast - z_orig_all) * batch.orig.attention_mask[None, :, :, None]
        per_head = (grad * shift).view(*grad.shape[:3], g.n_heads, g.head_dim)
        return per_head.sum((1, 2, 4))
