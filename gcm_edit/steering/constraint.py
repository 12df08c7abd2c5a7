"""KL(base ‖ edited) on the shipped neutral prompts, held to a target as a constraint.

Learned scales and distilled edits both buy effect with collateral damage. KL is a
constraint, not a price: its weight λ is a Lagrange multiplier, raised while KL is above the
target and lowered while below (λ ← λ·exp(η·(KL/target − 1)), at most ×e a step), so the
edit gets as much effect as the target allows.

Held on the prompts alone, an edit can leave them untouched and still change what the model
then writes (all heads trained: KL 0.34 on prompts, 4.3 on the base model's own
continuations). With `continuations`, the constraint also holds every position of the base
model's greedy continuation of each prompt, the text it would actually write.
"""

from __future__ import annotations

import math

import torch

from gcm_edit.inputs.neutral import neutral_material
from gcm_edit.inputs.prompts import bare_prompts
from gcm_edit.model.batches import TokenBatch, token_kl
from gcm_edit.model.generation import Decoding, generate
from gcm_edit.model.logits import final_states, project

DUAL_RATE = 1.0  # η: how fast λ follows KL / target
CONTINUATION_TOKENS = 32  # the base model's own greedy continuation of each neutral prompt


def base_continuations(base_model, tokenizer, batch_size: int = 8) -> list[list[int]]:
    """The base model's greedy continuation of each neutral prompt (token ids)."""
    prompts, _ = neutral_material()
    decoding = Decoding(max_new_tokens=CONTINUATION_TOKENS)
    ids = bare_prompts(tokenizer, list(prompts))
    return generate(base_model, tokenizer, ids, decoding, batch_size, "retention: continuations")


class NeutralKL:
    """Per-token KL on the neutral prompts (and, given, the base model's continuations of
    them: `base_continuations`) against the unedited model, and its multiplier."""

    def __init__(
        self,
        tokenizer,
        target: float,
        multiplier: float,
        continuations: list[list[int]] | None = None,
    ):
        prompts, _ = neutral_material()
        ids = bare_prompts(tokenizer, list(prompts))
        rest = continuations if continuations is not None else [[] for _ in ids]
        self.batch = TokenBatch.build(ids, rest, tokenizer.pad_token_id)
        self.target = target
        self.multiplier = multiplier  # λ
        self.base: torch.Tensor | None = None  # the unedited model's final hidden states

    @torch.no_grad()
    def start(self, model, device) -> None:
        """Record the unedited model's final hidden states (call with no edit applied). Its
        distributions are projected from them for the prompts a step uses, never held for all
        prompts at once (193 MB on the default model, 1 GB on a 262k-token vocabulary)."""
        self.base = final_states(model, self.batch.to(device))

    def kl(self, model, device, rows: torch.Tensor | None = None) -> torch.Tensor:
        """KL per neutral token (prompt and continuation) of `model` as it runs now (edit
        applied), differentiable; `rows`: only these prompts (an unbiased estimate at a
        fraction of the cost)."""
        batch, base = self.batch, self.base
        if rows is not None:
            batch = TokenBatch(*(t[rows] for t in vars(self.batch).values()))
            base = base[rows.to(base.device)]
        mask = batch.attention_mask.to(device)
        steered = project(model, final_states(model, batch.to(device)))
        with torch.no_grad():
            reference = project(model, base)
        return (token_kl(reference, steered) * mask).sum() / mask.sum()

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor | None:
        """`n` random prompts' rows (None: n covers them all)."""
        total = len(self.batch.input_ids)
        return None if n >= total else torch.randperm(total, generator=generator)[:n]

    def update(self, kl: float) -> None:
        """One dual step of λ toward holding KL at the target."""
        step = DUAL_RATE * max(min(kl / self.target - 1.0, 1.0), -1.0)
        self.multiplier = min(max(self.multiplier * math.exp(step), 1e-4), 1e4)
