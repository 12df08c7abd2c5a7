"""`distillation`: s[l,h] = −(1/N) Σ_pairs Σ_t ∇_{z[l,h,t]} L · δ[l,h], where L is the loss the
default edit is trained on, Σ_t KL(p(· | p_contrast ⊕ r<t) ‖ p(· | p_orig ⊕ r<t)) over the
contrast response r.

GCM's first-order idea applied to the objective we actually learn: how much adding δ at one head
(the distilled edit's start) lowers the distillation loss. The teacher is the unedited model
asked with the contrast directive, computed without gradients; the student is the model asked
with the original side (a pair's prompt; the edit itself is later asked bare), and only its
pass carries the probe. One teacher forward, one student forward and one backward per batch.
A prefilled response start counts as free tokens here (the edit's loss takes its likelihood).
"""

from __future__ import annotations

import torch

from gcm_edit.model.batches import TokenBatch
from gcm_edit.model.heads import add_to_heads
from gcm_edit.model.logits import distillation_loss, predicting_states
from gcm_edit.pairs.contrastive import Pair
from gcm_edit.scoring.engine import Scorer


class DistillationAttribution(Scorer):
    def __init__(self, model, pairs: list[Pair], pad_id: int, deltas: torch.Tensor):
        super().__init__(model, pairs, pad_id)
        self.register_buffer("deltas", deltas.float())

    def collate(self, item: list[int]) -> tuple[TokenBatch, TokenBatch]:
        """(teacher rows p_contrast ⊕ r, student rows p_orig ⊕ r), r the contrast response."""
        chosen = [self.pairs[i] for i in item]
        responses = [p.response_contrast for p in chosen]
        teacher = TokenBatch.build([p.prompt_contrast for p in chosen], responses, self.pad_id)
        student = TokenBatch.build([p.prompt_orig for p in chosen], responses, self.pad_id)
        return teacher, student

    def transfer_batch_to_device(self, batch, device, dataloader_idx: int):
        (teacher, student), weight = batch
        return (teacher.to(device), student.to(device)), weight

    def contribution(self, batch) -> torch.Tensor:
        teacher, student = batch
        g = self.geometry
        with torch.no_grad():
            targets = predicting_states(self.model, teacher)
        tokens = student.input_ids[:, 1:][student.response_mask[:, 1:]]
        free = torch.zeros(len(tokens), dtype=torch.bool, device=tokens.device)
        with torch.enable_grad():
            probe = torch.zeros(
                g.n_layers, g.n_heads * g.head_dim, device=self.device, requires_grad=True
            )
            with add_to_heads(self.model, probe):  # the backward too: it may recompute layers
                states = predicting_states(self.model, student)
                loss = distillation_loss(self.model, targets, states, free, tokens)
                (grad,) = torch.autograd.grad(loss, probe)
        return -(grad.view(g.n_layers, g.n_heads, g.head_dim) * self.deltas).sum(-1)
