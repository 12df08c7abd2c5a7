"""Stage 4: bake a steering plan into o_proj biases — an exact weight edit, not an approximation.

Adding v to o_proj's input adds W_O·v to its output, so
    b_O[l] += Σ_{h∈S_l} W_O[:, h·d:(h+1)·d] (α c[l,h] δ[l,h])
(W_O·δ, not δ: the two only share a shape when heads·head_dim = hidden_size).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from gcm_edit.architectures import arch_spec
from gcm_edit.heads import attention_modules
from gcm_edit.plan import SteeringPlan


def _add_zero_bias(linear: nn.Linear) -> None:
    if linear.bias is None:
        linear.bias = nn.Parameter(
            torch.zeros(
                linear.out_features, dtype=linear.weight.dtype, device=linear.weight.device
            ),
            requires_grad=False,
        )


@torch.no_grad()
def bake(model: nn.Module, plan: SteeringPlan) -> nn.Module:
    """A copy of `model` whose o_proj biases carry the plan; the config flag turns biases on.

    Switching `attention_bias` on also gives q/k/v a bias in the saved architecture, so they
    are written as zeros and the checkpoint loads with no missing keys.
    """
    spec = arch_spec(model.config)
    baked = copy.deepcopy(model)
    setattr(baked.config, spec.bias_flag, True)
    add = plan.add_tensor().to(next(model.parameters()).device)
    for layer, attention in enumerate(attention_modules(baked)):
        for name in spec.qkv:
            _add_zero_bias(getattr(attention, name))
        o_proj = getattr(attention, spec.o_proj)
        _add_zero_bias(o_proj)
        o_proj.bias += (o_proj.weight.double() @ add[layer].double()).to(o_proj.bias.dtype)
    return baked
