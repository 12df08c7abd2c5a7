"""MLP sites: the one hook that adds gated neurons to a layer's MLP output.

A gated MLP computes down(act(gate x) ⊙ up x) from its input x (the normed residual). m more
neurons add D (act(G x) ⊙ (U x)), with G, U [m, hidden] and D [hidden, m]: exactly what m
more rows of gate and up and m more columns of down compute, so the hook is what a grown
MLP bakes (checkpoint/bake.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from gcm_edit.errors import GcmEditError
from gcm_edit.model.architectures import arch_spec
from gcm_edit.model.heads import decoder_layers


def require_gated_mlp(config) -> None:
    """Refused in one line where gate and up are one fused projection."""
    if arch_spec(config).fused_gate_up is not None:
        raise GcmEditError(
            f"{config.model_type} fuses its MLP's gate and up projections: gated neurons "
            "need them apart; drop --edit-neurons"
        )


def mlp_modules(model: nn.Module) -> list[nn.Module]:
    """Every layer's gated MLP."""
    require_gated_mlp(model.config)
    return [getattr(layer, arch_spec(model.config).mlp) for layer in decoder_layers(model)]


@contextmanager
def add_neurons(
    model: nn.Module, neurons: list[tuple[int, torch.Tensor, torch.Tensor, torch.Tensor]]
) -> Iterator[None]:
    """Add each (layer, G, U, D)'s output to that layer's MLP output at every position;
    differentiable in G, U, D. No neurons: no hook (and no refusal)."""
    spec = arch_spec(model.config)
    mlps = mlp_modules(model) if neurons else []
    handles = []
    for layer, gate, up, down in neurons:
        mlp = mlps[layer]
        act = getattr(mlp, spec.mlp_act)

        def hook(_module, args, output, act=act, gate=gate, up=up, down=down):
            x = args[0]
            return output + (act(x @ gate.to(x).T) * (x @ up.to(x).T)) @ down.to(x).T

        handles.append(mlp.register_forward_hook(hook))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
