"""Retention: how much steering changed the model away from the concept.

KL(base ‖ steered) of next-token distributions on a fixed set of neutral chat prompts, three
ways: over every prompt position (teacher-forced), at the first answer token alone (the
figure heretic reports), and over the base model's own greedy continuation (on-policy: the
text the base would actually write); plus the perplexity of a short neutral text under both
models. All ship with the project (inputs/neutral.yaml), so numbers compare across runs.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch
from pydantic import BaseModel

from gcm_edit.evaluation.fluency import perplexities
from gcm_edit.inputs.neutral import neutral_material
from gcm_edit.inputs.prompts import bare_prompts
from gcm_edit.model.batches import TokenBatch, token_kl
from gcm_edit.steering.constraint import base_continuations
from gcm_edit.steering.plan import SteeringPlan
from gcm_edit.tables import Column, ResultTable


class Retention(BaseModel):
    kl: float  # mean KL(base ‖ steered) per prompt position, nats
    kl_first_token: float  # mean KL at the first answer position
    kl_on_policy: float  # mean KL per token of the base model's own greedy continuation
    neutral_ppl_base: float
    neutral_ppl_steered: float
    n_prompts: int

    def table(self) -> ResultTable:
        columns = [
            Column("KL per prompt token", lambda r: r.kl, ".4f"),
            Column("KL first answer token", lambda r: r.kl_first_token, ".4f"),
            Column("KL on-policy", lambda r: r.kl_on_policy, ".4f"),
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
    continuations: list[list[int]] | None = None,
    batch_size: int = 8,
) -> Retention:
    """Steered = `base_model` under `plan`, or another model (`steered_model`, same tokenizer).
    `continuations`: from `base_continuations` (computed here when not given)."""
    steered_model = steered_model if steered_model is not None else base_model
    prompts, text = neutral_material()
    ids = bare_prompts(tokenizer, list(prompts))
    if continuations is None:
        continuations = base_continuations(base_model, tokenizer, batch_size)
    device = next(base_model.parameters()).device
    sums = {"prompt": [0.0, 0], "first": [0.0, 0], "continuation": [0.0, 0]}
    for start in range(0, len(ids), batch_size):
        chunk, rest = ids[start : start + batch_size], continuations[start : start + batch_size]
        batch = TokenBatch.build(chunk, rest, tokenizer.pad_token_id).to(device)
        base = batch.run(base_model).logits
        with _steered(base_model, plan):
            steered = batch.run(steered_model).logits
        kl = torch.stack(  # [B, T] at each next-token position; one row's [T, V] in double at once
            [
                token_kl(torch.log_softmax(b.double(), -1), torch.log_softmax(s.double(), -1))
                for b, s in zip(base, steered, strict=True)
            ]
        )
        predicts_answer = torch.zeros_like(batch.response_mask)
        predicts_answer[:, :-1] = batch.response_mask[:, 1:]  # position t predicts token t+1
        first = predicts_answer & ~torch.roll(predicts_answer, 1, dims=1)
        for name, mask in (
            ("prompt", batch.prompt_mask),
            ("first", first),
            ("continuation", predicts_answer),
        ):
            sums[name][0] += float((kl * mask).sum())
            sums[name][1] += int(mask.sum())
    (ppl_base,) = perplexities(base_model, tokenizer, [text])
    with _steered(base_model, plan):
        (ppl_steered,) = perplexities(steered_model, tokenizer, [text])
    mean = {name: total / max(count, 1) for name, (total, count) in sums.items()}
    return Retention(
        kl=mean["prompt"],
        kl_first_token=mean["first"],
        kl_on_policy=mean["continuation"],
        neutral_ppl_base=ppl_base,
        neutral_ppl_steered=ppl_steered,
        n_prompts=len(prompts),
    )
