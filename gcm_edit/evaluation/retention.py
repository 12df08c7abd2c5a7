"""Retention: how much steering changed the model away from the concept.

KL(base ‖ steered) of next-token distributions, averaged over every position of a fixed set
of neutral chat prompts, and the perplexity of a short neutral text under both models.
Both ship with the project (inputs/neutral.yaml), so numbers compare across runs.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch
from pydantic import BaseModel

from gcm_edit.evaluation.fluency import perplexities
from gcm_edit.inputs.neutral import neutral_material
from gcm_edit.inputs.prompts import bare_prompts
from gcm_edit.model.batches import TokenBatch
from gcm_edit.steering.plan import SteeringPlan
from gcm_edit.tables import Column, ResultTable


class Retention(BaseModel):
    kl: float  # mean KL(base ‖ steered) per next-token position, nats
    neutral_ppl_base: float
    neutral_ppl_steered: float
    n_prompts: int

    def table(self) -> ResultTable:
        columns = [
            Column("KL(base ‖ steered) per token", lambda r: r.kl, ".4f"),
            Column("neutral text ppl: base", lambda r: r.neutral_ppl_base, ".2f"),
            Column("steered", lambda r: r.neutral_ppl_steered, ".2f"),
        ]
        title = f"Retention on {self.n_prompts} neutral prompts and a neutral text"
        return ResultTable(title, columns, [self])


def _steered(base_model, plan: SteeringPlan | None):
    device = next(base_model.parameters()).device
    return plan.apply(base_model, device) if plan is not None else nullcontext()


@torch.no_grad()
def measure_retention(
    base_model,
    tokenizer,
    plan: SteeringPlan | None = None,
    steered_model=None,
    batch_size: int = 8,
) -> Retention:
    """Steered = `base_model` under `plan`, or another model (`steered_model`, same tokenizer)."""
    steered_model = steered_model if steered_model is not None else base_model
    prompts, text = neutral_material()
    ids = bare_prompts(tokenizer, list(prompts))
    device = next(base_model.parameters()).device
    total, count = 0.0, 0
    for start in range(0, len(ids), batch_size):
        chunk = ids[start : start + batch_size]
        batch = TokenBatch.build(chunk, [[] for _ in chunk], tokenizer.pad_token_id).to(device)
        base = torch.log_softmax(batch.run(base_model).logits.double(), dim=-1)
        with _steered(base_model, plan):
            steered = torch.log_softmax(batch.run(steered_model).logits.double(), dim=-1)
        kl = (base.exp() * (base - steered)).sum(-1)  # [B, T]
        total += float((kl * batch.attention_mask).sum())
        count += int(batch.attention_mask.sum())
    (ppl_base,) = perplexities(base_model, tokenizer, [text])
    with _steered(base_model, plan):
        (ppl_steered,) = perplexities(steered_model, tokenizer, [text])
    return Retention(
        kl=total / count,
        neutral_ppl_base=ppl_base,
        neutral_ppl_steered=ppl_steered,
        n_prompts=len(prompts),
    )
