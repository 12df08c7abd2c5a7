"""The baseline most users reach for first: one residual-stream mean-difference vector at one
layer (CAA, Panickssery et al. 2023; as steering-vectors and repeng compute it).

v[l] = mean over pairs of the per-sequence mean, over response positions, of layer l's output
hidden state, contrast minus original. It is added to the residual stream at layer l's
attention output, i.e. as a bias of that layer's o_proj, so it bakes exactly like every
plan: o_proj's input gets a = W_O⁺ (c·v) spread over all of the layer's heads, and
W_O a = c·v wherever W_O has full row rank (heads·head_dim ≥ hidden_size, as in Llama-style
models). The layer's MLP then sees the vector too, which CAA's after-the-layer addition does
not: the site is where an export can carry it.
"""

from __future__ import annotations

import torch

from gcm_edit.console import progress
from gcm_edit.errors import GcmEditError
from gcm_edit.model.batches import TokenBatch
from gcm_edit.model.heads import HeadGeometry, o_proj_modules
from gcm_edit.pairs.contrastive import Pair
from gcm_edit.steering.plan import SteeringPlan

EXACT = 1e-4  # relative residual of W_O a = c·v above which the layer cannot carry v


@torch.no_grad()
def residual_vectors(model, pairs: list[Pair], pad_id: int, batch_size: int = 8) -> torch.Tensor:
    """v for every layer: [layers, hidden_size]."""
    device = next(model.parameters()).device
    n_layers = HeadGeometry.of(model.config).n_layers
    sides = {
        1.0: [(p.prompt_contrast, p.response_contrast) for p in pairs],
        -1.0: [(p.prompt_orig, p.response_orig) for p in pairs],
    }
    total = torch.zeros(n_layers, model.config.hidden_size)
    for sign, sequences in sides.items():
        for start in progress(range(0, len(sequences), batch_size), "residual vectors"):
            chunk = sequences[start : start + batch_size]
            batch = TokenBatch.build([p for p, _ in chunk], [r for _, r in chunk], pad_id)
            batch = batch.to(device)
            states = batch.run(model, output_hidden_states=True).hidden_states[1:]
            mask = batch.response_mask.float()[..., None]
            for layer, hidden in enumerate(states[:n_layers]):
                per_seq = (hidden.float() * mask).sum(1) / mask.sum(1).clamp(min=1)
                total[layer] += sign * per_seq.sum(0).cpu()
    return total / len(pairs)


def residual_plan(model, layer: int, vector: torch.Tensor, coefficient: float) -> SteeringPlan:
    """c·v added at layer `layer`'s o_proj output, as an additive plan on all its heads."""
    g = HeadGeometry.of(model.config)
    weight = o_proj_modules(model)[layer].weight.detach().double().cpu()
    target = coefficient * vector.double()
    add = torch.linalg.pinv(weight) @ target
    miss = float((weight @ add - target).norm() / target.norm().clamp(min=1e-12))
    if miss > EXACT:
        raise GcmEditError(
            f"layer {layer}'s output projection cannot write this residual vector exactly "
            f"(relative miss {miss:.1e}): heads·head_dim is below hidden_size"
        )
    heads = [(layer, head) for head in range(g.n_heads)]
    return SteeringPlan(g, heads, add.float().view(g.n_heads, g.head_dim), 1.0, [1.0] * g.n_heads)
