"""Padding prompt⊕response token sequences into batches with position masks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch


@dataclass
class TokenBatch:
    """Right-padded prompt⊕response sequences (right padding keeps default position ids)."""

    input_ids: torch.Tensor  # [B, T]
    attention_mask: torch.Tensor  # [B, T]
    prompt_mask: torch.Tensor  # [B, T] bool, prompt positions
    response_mask: torch.Tensor  # [B, T] bool, response positions

    @classmethod
    def build(cls, prompts: list[list[int]], responses: list[list[int]], pad_id: int) -> TokenBatch:
        lengths = [len(p) + len(r) for p, r in zip(prompts, responses, strict=True)]
        width = max(lengths)
        ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
        attn = torch.zeros_like(ids)
        pmask = torch.zeros_like(ids, dtype=torch.bool)
        rmask = torch.zeros_like(ids, dtype=torch.bool)
        for i, (p, r) in enumerate(zip(prompts, responses, strict=True)):
            ids[i, : len(p) + len(r)] = torch.tensor(p + r)
            attn[i, : len(p) + len(r)] = 1
            pmask[i, : len(p)] = True
            rmask[i, len(p) : len(p) + len(r)] = True
        return cls(ids, attn, pmask, rmask)

    def to(self, device) -> TokenBatch:
        return TokenBatch(*(t.to(device) for t in vars(self).values()))

    def run(self, model, **kwargs):
        """Teacher-forced forward; no KV cache (nothing is generated, and checkpointed layers
        would append to it again when recomputed)."""
        return model(
            input_ids=self.input_ids, attention_mask=self.attention_mask, use_cache=False, **kwargs
        )

    def repeat(self, copies: int) -> TokenBatch:
        """The batch stacked `copies` times along the rows (one copy per patched head)."""
        return TokenBatch(*(t.repeat(copies, 1) for t in vars(self).values()))

    def position_mask(self, positions: str) -> torch.Tensor:
        """Mask of the positions δ averages over: `prompt`, `response` or `all`."""
        if positions == "prompt":
            return self.prompt_mask
        if positions == "response":
            return self.response_mask
        return self.prompt_mask | self.response_mask


def token_kl(base_logprobs: torch.Tensor, steered_logprobs: torch.Tensor) -> torch.Tensor:
    """KL(base ‖ steered) of the next-token distributions at each position: [..., V] → [...]."""
    return (base_logprobs.exp() * (base_logprobs - steered_logprobs)).sum(-1)


def length_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices in batches of similar length, longest first: padding is compute on a CPU
    (bench/evaluation.py prints how much a pass pads), and longest first puts a batch's peak
    memory at the start, not the end."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def by_length(
    lengths: Sequence[int], batch_size: int, rows: Callable[[list[int]], torch.Tensor]
) -> torch.Tensor:
    """`rows(indices)` over `length_batches`, each row put back at its index: batching by
    length must not change which figure belongs to which input."""
    out: torch.Tensor | None = None
    for chunk in length_batches(lengths, batch_size):
        part = rows(chunk)
        if out is None:
            out = part.new_empty((len(lengths), *part.shape[1:]))
        out[chunk] = part
    return torch.empty(0, dtype=torch.float64) if out is None else out
