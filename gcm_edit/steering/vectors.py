"""Stage 2a: steering vectors δ[l,h] = mean z(contrast run) − mean z(original run).

Each pair weighs equally: a sequence's z is first averaged over the chosen positions,
then sequences are averaged. The same pass measures each head's typical output norm
E‖z‖ on the original runs, the yardstick for how hard a steering vector pushes, and keeps
the original runs' mean z, which rank-1 steering reads its heads' activity against.
"""

from __future__ import annotations

import torch

from gcm_edit.console import progress
from gcm_edit.model.batches import TokenBatch
from gcm_edit.model.heads import HeadGeometry, edit_head_inputs
from gcm_edit.pairs.contrastive import Pair

POSITIONS = ("prompt", "response", "all")
HEAD_NORM = "head_norm"  # E‖z‖ per head [L, H], over all positions of the original runs


def original_key(positions: str) -> str:
    """Where `steering_vectors` keeps the original runs' mean z [L, H, d] for `positions`."""
    return f"original_{positions}"


@torch.no_grad()
def mean_head_outputs(
    model, sequences: list[tuple[list[int], list[int]]], pad_id: int, batch_size: int, label: str
) -> dict[str, torch.Tensor]:
    """Per positions mode, the mean over sequences of the per-sequence mean z: [L, H, d];
    under HEAD_NORM, the same mean of ‖z‖ over all positions: [L, H]."""
    geometry = HeadGeometry.of(model.config)
    device = next(model.parameters()).device
    totals = {
        p: torch.zeros(geometry.n_layers, geometry.n_heads * geometry.head_dim) for p in POSITIONS
    }
    norms = torch.zeros(geometry.n_layers, geometry.n_heads)
    for start in progress(range(0, len(sequences), batch_size), label):
        chunk = sequences[start : start + batch_size]
        batch = TokenBatch.build([p for p, _ in chunk], [r for _, r in chunk], pad_id).to(device)
        masks = {p: batch.position_mask(p).float() for p in POSITIONS}

        def record(layer: int, z: torch.Tensor, masks=masks) -> None:
            for positions, mask in masks.items():
                per_seq = (z.float() * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(
                    min=1
                )
                totals[positions][layer] += per_seq.sum(0).cpu()
            mask = masks["all"]
            norm = z.float().view(*z.shape[:2], geometry.n_heads, geometry.head_dim).norm(dim=-1)
            per_seq = (norm * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
            norms[layer] += per_seq.sum(0).cpu()

        with edit_head_inputs(model, record):
            batch.run(model)
    shape = (geometry.n_layers, geometry.n_heads, geometry.head_dim)
    means = {p: (t / len(sequences)).view(shape) for p, t in totals.items()}
    return {**means, HEAD_NORM: norms / len(sequences)}


def steering_vectors(
    model, pairs: list[Pair], pad_id: int, batch_size: int = 8
) -> dict[str, torch.Tensor]:
    """δ for every head and every positions mode: {positions: [L, H, d]}, the original runs'
    mean z under `original_key(positions)` [L, H, d], and HEAD_NORM: each head's typical
    output norm on the original runs [L, H]."""
    sides = {
        "contrast": [(p.prompt_contrast, p.response_contrast) for p in pairs],
        "original": [(p.prompt_orig, p.response_orig) for p in pairs],
    }
    means = {
        side: mean_head_outputs(model, sequences, pad_id, batch_size, f"δ: {side} runs")
        for side, sequences in sides.items()
    }
    deltas = {p: means["contrast"][p] - means["original"][p] for p in POSITIONS}
    originals = {original_key(p): means["original"][p] for p in POSITIONS}
    return {**deltas, **originals, HEAD_NORM: means["original"][HEAD_NORM]}
