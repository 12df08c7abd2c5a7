"""Exact patching, one forward per head: `activation` (z += δ) and `knockout` (z ← 0).

activation: IE[l,h] = (1/N) Σ_pairs M(z[l,h] += δ[l,h]) − M(), the exact effect of the
            intervention that attribution linearises and that the export bakes.
knockout:   (1/N) Σ_pairs M() − M(z[l,h] ← 0), what the head contributes to M (the
            zero-ablation effect, negated so that heads pushing toward the contrast rank first).

A work item is (a chunk of pairs, a group of heads): the chunk is stacked once per head
in the group and each copy patches its own head, so `head_batch` heads share a forward.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gcm_edit.model.batches import TokenBatch
from gcm_edit.model.heads import edit_head_inputs
from gcm_edit.pairs.contrastive import Pair
from gcm_edit.scoring.engine import Scorer
from gcm_edit.scoring.metric import collate_pairs, mediation_metric


@dataclass
class PatchBatch:
    tokens: TokenBatch
    chunk: int  # which pair chunk (the unpatched M is computed once per chunk and rank)
    heads: list[tuple[int, int]]

    def to(self, device) -> PatchBatch:
        return PatchBatch(self.tokens.to(device), self.chunk, self.heads)


class ExactPatching(Scorer):
    def __init__(
        self,
        model,
        pairs: list[Pair],
        pad_id: int,
        head_batch: int,
        deltas: torch.Tensor | None = None,
    ):
        """deltas given: activation patching with z += δ; None: knockout (z ← 0)."""
        super().__init__(model, pairs, pad_id)
        self.head_batch = head_batch
        self.deltas = None if deltas is None else deltas.float()
        self._unpatched: dict[int, torch.Tensor] = {}

    def work_items(self, batch_size: int) -> list:
        g = self.geometry
        heads = [(layer, head) for layer in range(g.n_layers) for head in range(g.n_heads)]
        groups = [heads[i : i + self.head_batch] for i in range(0, len(heads), self.head_batch)]
        return [
            (chunk_id, chunk, group)
            for chunk_id, chunk in enumerate(super().work_items(batch_size))
            for group in groups
        ]

    def collate(self, item) -> PatchBatch:
        chunk_id, chunk, group = item
        return PatchBatch(
            collate_pairs([self.pairs[i] for i in chunk], self.pad_id), chunk_id, group
        )

    def _patches(self, heads: list[tuple[int, int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-layer multiplier and addend for each copy: [layers, copies, heads*head_dim]."""
        g = self.geometry
        shape = (g.n_layers, len(heads), g.n_heads * g.head_dim)
        scale = torch.ones(shape, device=self.device)
        add = torch.zeros(shape, device=self.device)
        for copy, (layer, head) in enumerate(heads):
            if self.deltas is None:
                scale[layer, copy, g.head_slice(head)] = 0.0
            else:
                add[layer, copy, g.head_slice(head)] = self.deltas[layer, head].to(self.device)
        return scale, add

    def contribution(self, batch: PatchBatch) -> torch.Tensor:
        if batch.chunk not in self._unpatched:
            self._unpatched[batch.chunk] = mediation_metric(self.model, batch.tokens)[0]
        unpatched = self._unpatched[batch.chunk]
        copies = len(batch.heads)
        scale, add = self._patches(batch.heads)

        def patch(layer: int, z: torch.Tensor) -> torch.Tensor:
            rows = z.view(copies, -1, *z.shape[1:])
            rows = rows * scale[layer, :, None, None].to(z) + add[layer, :, None, None].to(z)
            return rows.view(z.shape)

        with edit_head_inputs(self.model, patch):
            patched = mediation_metric(self.model, batch.tokens.repeat(copies), copies)
        effect = (patched - unpatched).sum(-1)  # [copies], summed over the chunk's pairs
        if self.deltas is None:
            effect = -effect
        out = torch.zeros(self.total.shape, device=self.device, dtype=effect.dtype)
        for copy, (layer, head) in enumerate(batch.heads):
            out[layer, head] = effect[copy]
        return out

    def on_predict_epoch_end(self) -> None:
        self._unpatched.clear()
        super().on_predict_epoch_end()
