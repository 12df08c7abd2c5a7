"""Collateral cost per head: what steering that head alone does to text with no concept in it.

κ[l,h] = KL(base ‖ steered) per token on the shipped neutral prompts with only head (l,h)
steered — the same figure retention reports for a whole plan, so a plan's KL is roughly the
sum of its heads' κ (exactly so to first order). Selection can then trade effect against
cost: if head h is steered with strength t_h, its effect grows like t_h·e_h and its KL like
t_h²·κ_h, so under a KL budget the best heads are those with the largest e_h / √κ_h
("effect-per-kl"). That ratio does not depend on α, so κ is measured once, at α = 1.

Each head costs a forward of the neutral prompts (about 2 s on the default model on 2 CPU
cores), so κ is measured for a pool: the top COLLATERAL_POOL% of heads by score. Heads
outside it rank after every pooled head, so plans of up to that many heads are unaffected.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from gcm_edit.console import progress
from gcm_edit.inputs.neutral import neutral_material
from gcm_edit.inputs.prompts import bare_prompts
from gcm_edit.model.batches import TokenBatch, token_kl
from gcm_edit.model.heads import HeadGeometry
from gcm_edit.steering.plan import SteeringPlan

COLLATERAL_POOL = 25.0  # % of all heads, by score, whose collateral is measured
RANKINGS = {  # how selection orders heads (--rank-by), as the model card words it
    "effect": "their mediation score",
    "effect-per-kl": "mediation score per √(KL of the head steered alone on neutral prompts)",
}


@torch.no_grad()
def head_collateral(
    model,
    tokenizer,
    heads: list[tuple[int, int]],
    one_head_plan: Callable[[tuple[int, int]], SteeringPlan],
    batch_size: int,
) -> torch.Tensor:
    """κ [L, H] for `heads` (0 elsewhere): the mean KL per neutral prompt token with
    `one_head_plan(head)` applied, one forward of the neutral prompts per head."""
    geometry = HeadGeometry.of(model.config)
    device = next(model.parameters()).device
    prompts, _ = neutral_material()
    ids = bare_prompts(tokenizer, list(prompts))
    batches = [
        TokenBatch.build(chunk, [[]] * len(chunk), tokenizer.pad_token_id).to(device)
        for chunk in (ids[i : i + batch_size] for i in range(0, len(ids), batch_size))
    ]
    base = [torch.log_softmax(b.run(model).logits.float(), dim=-1) for b in batches]
    n_tokens = sum(int(b.attention_mask.sum()) for b in batches)
    cost = torch.zeros(geometry.n_layers, geometry.n_heads)
    for head in progress(heads, "collateral: one head at a time"):
        total = 0.0
        with one_head_plan(head).apply(model, device):
            for batch, base_lp in zip(batches, base, strict=True):
                steered = torch.log_softmax(batch.run(model).logits.float(), dim=-1)
                total += float((token_kl(base_lp, steered) * batch.attention_mask).sum())
        cost[head] = total / n_tokens
    return cost


def ranking(scores: torch.Tensor, cost: torch.Tensor | None, rank_by: str) -> torch.Tensor:
    """What selection sorts by: the score itself, or score / √κ for heads whose κ was
    measured (κ > 0) and that push toward the contrast (score > 0); the rest rank last."""
    if rank_by == "effect":
        return scores
    if cost is None:
        raise ValueError("effect-per-kl ranking needs the heads' collateral cost")
    ratio = scores / cost.clamp(min=1e-12).sqrt()
    return torch.where((scores > 0) & (cost > 0), ratio, torch.full_like(scores, -torch.inf))
