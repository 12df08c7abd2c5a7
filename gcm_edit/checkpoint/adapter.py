"""`export --format adapter`: the same steering as an exact PEFT LoRA adapter on o_proj.

LoRA adds `B(A x) + b_B` (times lora_alpha / r, set to 1) to o_proj's output:
- additive steering: `lora_bias=True` with B's weights zero and B's bias = W_O·a, the very
  bias the full export bakes (W_O before any scaling, as in the hook z ← s⊙z + a);
- head scaling by s: rank d_head per scaled head, A selects the head's input columns and
  B = (s − 1)·W_O[:, head], so W_O z + B A z = W_O (s ⊙ z);
- a rank-1 head is one rank: A's row is uᵀ on the head's input columns and B's column is
  W_O[:, head]·(α c δ), so B A z = W_O[:, head] (α c δ)(uᵀ z_head).
A layer's ranks add up: d_head per scaled head, then one per rank-1 head, all reading the
unscaled z and using W_O before scaling, as the hook and the full export do.
`PeftModel.from_pretrained(base, folder)` is therefore the steered model; merging needs an
o_proj bias in the base (families with an `attention_bias` switch: load it with True).
"""

from __future__ import annotations

import copy
import warnings

import torch

from gcm_edit.checkpoint.bake import require_finite
from gcm_edit.errors import GcmEditError
from gcm_edit.model.heads import HeadGeometry, o_proj_modules
from gcm_edit.steering.plan import SteeringPlan


def _module_names(model) -> list[str]:
    """Qualified names of every layer's o_proj, in layer order."""
    by_id = {id(module): name for name, module in model.named_modules()}
    return [by_id[id(proj)] for proj in o_proj_modules(model)]


@torch.no_grad()
def build_adapter(model, plan: SteeringPlan):
    """A PeftModel (on a copy of `model`) whose LoRA weights carry `plan` exactly."""
    from peft import LoraConfig, get_peft_model

    if plan.neurons:
        raise GcmEditError("gated neurons cannot be carried by a LoRA adapter: use --format full")
    g: HeadGeometry = plan.geometry
    add = plan.add_tensor()
    layers = sorted({layer for layer, _ in plan.steered_heads})
    scaled = {layer: [] for layer in layers}
    for (layer, head), value in zip(plan.scaled_heads, plan.head_scales, strict=True):
        scaled[layer].append((head, value))
    rank1 = plan.rank1_factors()
    n_rank1 = {layer: len(reads) for layer, (reads, _) in rank1.items()}
    names = _module_names(model)
    ranks = {
        names[layer]: max(1, g.head_dim * len(scaled[layer]) + n_rank1.get(layer, 0))
        for layer in layers
    }
    config = LoraConfig(
        target_modules=[names[layer] for layer in layers],
        r=1,
        lora_alpha=1,
        rank_pattern=ranks,
        alpha_pattern=ranks,  # lora_alpha = r: scaling 1
        lora_dropout=0.0,
        lora_bias=True,
        bias="none",
        init_lora_weights=False,
    )
    with warnings.catch_warnings():  # "no bias, merging impossible": the module doc says how
        warnings.filterwarnings("ignore", ".*lora_bias=True.*has no bias")
        peft_model = get_peft_model(copy.deepcopy(model), config)
    for layer, proj in zip(
        layers, (o_proj_modules(peft_model.base_model.model)[i] for i in layers), strict=True
    ):
        weight = proj.base_layer.weight
        lora_a, lora_b = proj.lora_A["default"], proj.lora_B["default"]
        lora_a.weight.zero_()
        lora_b.weight.zero_()
        lora_b.bias.copy_(
            (weight.double() @ add[layer].double().to(weight.device)).to(weight.dtype)
        )
        for i, (head, value) in enumerate(scaled[layer]):
            rows = slice(i * g.head_dim, (i + 1) * g.head_dim)
            cols = g.head_slice(head)
            lora_a.weight[rows, cols] = torch.eye(g.head_dim, dtype=weight.dtype)
            lora_b.weight[:, rows] = (value - 1.0) * weight[:, cols]
        if layer in rank1:
            reads, writes = rank1[layer]
            rows = slice(g.head_dim * len(scaled[layer]), None)  # after the scaling ranks
            lora_a.weight[rows] = reads.to(lora_a.weight)
            columns = weight.double() @ writes.to(weight.device, torch.float64).T
            lora_b.weight[:, rows] = columns.to(lora_b.weight)
    require_finite(peft_model.base_model.model, plan)
    return peft_model.eval()
