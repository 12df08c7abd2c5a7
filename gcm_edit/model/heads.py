"""Attention-head sites: geometry and the one hook that reads or edits o_proj's input.

`z[l, h, t]` is head h's output before o_proj, i.e. slice `h*d:(h+1)*d` of o_proj's input
(`d = config.head_dim`, which is not always hidden/heads).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from gcm_edit.model.architectures import arch_spec


@dataclass(frozen=True)
class HeadGeometry:
    n_layers: int
    n_heads: int
    head_dim: int

    @classmethod
    def of(cls, config) -> HeadGeometry:
        head_dim = getattr(config, "head_dim", None) or (
            config.hidden_size // config.num_attention_heads
        )
        return cls(config.num_hidden_layers, config.num_attention_heads, head_dim)

    @property
    def n_total(self) -> int:
        return self.n_layers * self.n_heads

    def head_slice(self, head: int) -> slice:
        return slice(head * self.head_dim, (head + 1) * self.head_dim)


def _get(obj, dotted: str):
    for name in dotted.split("."):
        obj = getattr(obj, name)
    return obj


def decoder_layers(model: nn.Module) -> list[nn.Module]:
    return list(_get(model, arch_spec(model.config).layers))


def attention_modules(model: nn.Module) -> list[nn.Module]:
    spec = arch_spec(model.config)
    return [getattr(layer, spec.attention) for layer in decoder_layers(model)]


def o_proj_modules(model: nn.Module) -> list[nn.Linear]:
    spec = arch_spec(model.config)
    return [getattr(attn, spec.o_proj) for attn in attention_modules(model)]


@contextmanager
def edit_head_inputs(
    model: nn.Module, edit: Callable[[int, torch.Tensor], torch.Tensor | None]
) -> Iterator[None]:
    """Call `edit(layer, z)` on o_proj's input (shape [..., heads*head_dim]) in every layer.

    Returning a tensor replaces the input; returning None only observes it.
    """

    def make_hook(layer: int):
        def hook(_module, args):
            new = edit(layer, args[0])
            return None if new is None else (new, *args[1:])

        return hook

    handles = [
        proj.register_forward_pre_hook(make_hook(i)) for i, proj in enumerate(o_proj_modules(model))
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


Rank1 = dict[int, tuple[torch.Tensor, torch.Tensor]]  # layer -> (reads, writes), each [r, H*d]


def intervene(
    model: nn.Module,
    add: torch.Tensor | None = None,
    scale: torch.Tensor | None = None,
    rank1: Rank1 | None = None,
):
    """z ← scale[l] ⊙ z + add[l] + (z·readsᵀ)·writes in every layer, all positions.

    `add` and `scale` are [layers, heads*head_dim]; `rank1[l]` holds one row per rank-1 edit
    (each row non-zero on its head's slice only), and reads the unscaled z.
    """
    rank1 = rank1 or {}

    def edit(layer: int, z: torch.Tensor) -> torch.Tensor:
        out = z
        if scale is not None:
            out = out * scale[layer].to(z)
        if add is not None:
            out = out + add[layer].to(z)
        if layer in rank1:
            reads, writes = rank1[layer]
            out = out + (z @ reads.to(z).T) @ writes.to(z)
        return out

    return edit_head_inputs(model, edit)


def add_to_heads(model: nn.Module, add: torch.Tensor):
    """Add `add[l]` (shape [layers, heads*head_dim]) to o_proj's input at every position."""
    return intervene(model, add=add)
