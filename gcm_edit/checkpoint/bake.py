"""Bake a steering plan into the weights — an exact edit, not an approximation.

Adding v to o_proj's input adds W_O·v to its output, scaling a head's slice of the input
by s is the same as scaling those columns of W_O, and adding v·(uᵀz_h) is a rank-1 update of
them. With W_h = W_O[:, h·d:(h+1)·d]:
    b_O[l] += Σ_{h∈S_l} W_h (α c[l,h] δ[l,h])                  (additive)
    W_h ← s[l,h] · W_h                                          (head scaling)
    W_h ← W_h + (W_h · α c[l,h] δ[l,h]) u[l,h]ᵀ                (rank-1: needs no bias)
(W_O·δ, not δ: the two only share a shape when heads·head_dim = hidden_size.) The bias and
the rank-1 term use W_O before scaling, matching the hook z ← s ⊙ z + a + Σ αcδ(uᵀz):
W' = W·diag(s) + Σ_h W_h (α c_h δ_h) u_hᵀ, computed in float64.
Gated neurons grow every layer's MLP by as many neurons as the layer with most: their rows of
gate and up and columns of down where they are, zeros elsewhere (`grow_mlps`).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from gcm_edit.checkpoint.llamafy import llamafy
from gcm_edit.errors import GcmEditError
from gcm_edit.model.architectures import arch_spec
from gcm_edit.model.heads import attention_modules, o_proj_modules
from gcm_edit.model.mlp import mlp_modules
from gcm_edit.steering.plan import SteeringPlan


def _add_zero_bias(linear: nn.Linear) -> None:
    if linear.bias is None:
        linear.bias = nn.Parameter(
            torch.zeros(
                linear.out_features, dtype=linear.weight.dtype, device=linear.weight.device
            ),
            requires_grad=False,
        )


def needs_llamafy(model: nn.Module, plan: SteeringPlan) -> bool:
    """Additive steering needs an o_proj bias, which a bias-less family only gets as Llama."""
    return bool(plan.heads) and arch_spec(model.config).export == "llamafy"


def export_class(model: nn.Module, plan: SteeringPlan) -> str:
    """The class the baked checkpoint is saved as."""
    return "LlamaForCausalLM" if needs_llamafy(model, plan) else type(model).__name__


def copy_for_baking(model: nn.Module) -> nn.Module:
    """A copy whose output projections are new tensors and whose other tensors are `model`'s
    own: baking writes only o_proj (and adds zero biases), so the rest (on Gemma 3 270M, a
    262k-token embedding, 0.67 GB in fp32) need not exist twice."""
    edited = {id(t) for o_proj in o_proj_modules(model) for t in o_proj.parameters()}
    unedited = (t for t in (*model.parameters(), *model.buffers()) if id(t) not in edited)
    return copy.deepcopy(model, {id(t): t for t in unedited})


@torch.no_grad()
def bake(model: nn.Module, plan: SteeringPlan) -> nn.Module:
    """A copy of `model` with the plan in its weights; `model` itself is left untouched (the
    copy shares every tensor but the output projections' with it: do not train the copy).

    Additive steering switches the family's o_proj bias on (q/k/v biases come with it and
    are written as zeros, so the checkpoint loads with no missing keys); head scaling and
    rank-1 edits need no config change.
    """
    baked = llamafy(model) if needs_llamafy(model, plan) else copy_for_baking(model)
    if plan.heads:
        spec = arch_spec(baked.config)
        setattr(baked.config, spec.bias_flag, True)
        add = plan.add_tensor().to(next(baked.parameters()).device)
        for layer, attention in enumerate(attention_modules(baked)):
            for name in spec.qkv:
                _add_zero_bias(getattr(attention, name))
            o_proj = getattr(attention, spec.o_proj)
            _add_zero_bias(o_proj)
            o_proj.bias += (o_proj.weight.double() @ add[layer].double()).to(o_proj.bias.dtype)
    scale = plan.scale_tensor()
    rank1 = plan.rank1_factors()
    for layer, o_proj in enumerate(o_proj_modules(baked)):
        weight = o_proj.weight
        update = rank1_update(weight, *rank1[layer]) if layer in rank1 else None  # W unscaled
        if scale is not None:
            weight.mul_(scale[layer].to(weight))
        if update is not None:
            weight += update.to(weight.dtype)
    if plan.neurons:
        grow_mlps(baked, plan)
    require_finite(baked, plan)
    return baked


def _grown(linear: nn.Linear, extra: torch.Tensor, dim: int) -> nn.Linear:
    """A new Linear with `extra` appended to its weight along `dim` (0: more outputs, whose
    bias, if any, is 0; 1: more inputs)."""
    weight = torch.cat([linear.weight, extra.to(linear.weight)], dim=dim)
    grown = nn.Linear(weight.shape[1], weight.shape[0], bias=linear.bias is not None)
    grown = grown.to(dtype=weight.dtype, device=weight.device).requires_grad_(False)
    grown.weight.copy_(weight)
    if linear.bias is not None:
        pad = torch.zeros(weight.shape[0] - linear.bias.shape[0]) if dim == 0 else None
        grown.bias.copy_(
            linear.bias if pad is None else torch.cat([linear.bias, pad.to(linear.bias)])
        )
    return grown


def grow_mlps(model: nn.Module, plan: SteeringPlan) -> None:
    """Append the plan's gated neurons to their layers' MLPs and as many zero neurons to every
    other layer's (a config has one intermediate_size); new modules, so tensors the copy shares
    with the unedited model are never written."""
    spec = arch_spec(model.config)
    mlps = mlp_modules(model)
    by_layer: dict[int, list] = {}
    for neurons in plan.neurons:
        by_layer.setdefault(neurons.layer, []).append(neurons)
    width = max(sum(n.count for n in group) for group in by_layer.values())
    hidden = model.config.hidden_size
    gate_name, up_name, down_name = spec.mlp_proj
    for layer, mlp in enumerate(mlps):
        group = by_layer.get(layer, [])
        pad = width - sum(n.count for n in group)
        rows = {
            part: torch.cat([getattr(n, part).double() for n in group] + [torch.zeros(pad, hidden)])
            for part in ("gate", "up")
        }
        down = torch.cat([n.down.double() for n in group] + [torch.zeros(hidden, pad)], dim=1)
        setattr(mlp, gate_name, _grown(getattr(mlp, gate_name), rows["gate"], 0))
        setattr(mlp, up_name, _grown(getattr(mlp, up_name), rows["up"], 0))
        setattr(mlp, down_name, _grown(getattr(mlp, down_name), down, 1))
        if hasattr(mlp, "intermediate_size"):
            mlp.intermediate_size += width
    model.config.intermediate_size += width


def rank1_update(weight: torch.Tensor, reads: torch.Tensor, writes: torch.Tensor) -> torch.Tensor:
    """(W·writesᵀ)·reads in float64: what the layer's rank-1 edits add to W_O."""
    w = weight.double()
    return (w @ writes.to(w).T) @ reads.to(w)


def require_finite(model: nn.Module, plan: SteeringPlan) -> None:
    """Fail closed: a baked tensor holding NaN or inf is an error, never a checkpoint. Only
    the output projections are computed by baking, so only they are checked (a full check
    holds a float copy of the embedding at once)."""
    edited = {f"layer {layer} o_proj": o_proj for layer, o_proj in enumerate(o_proj_modules(model))}
    if plan.neurons:
        edited |= {f"layer {layer} MLP": mlp for layer, mlp in enumerate(mlp_modules(model))}
    broken = [
        f"{where}.{name}"
        for where, module in edited.items()
        for name, p in module.named_parameters()
        if not torch.isfinite(p).all()
    ]
    if broken:
        raise GcmEditError(
            f"baking α={plan.alpha} gave NaN or inf in {len(broken)} tensors (first: "
            f"{broken[0]}): the steering overflows the weights; lower --alpha"
        )
