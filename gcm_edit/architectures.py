"""Where each architecture keeps its attention heads, as data (the only place that knows).

Every other module asks `arch_spec(config)` instead of branching on `model_type`.
"""

from __future__ import annotations

from dataclasses import dataclass

from gcm_edit.errors import GcmEditError


@dataclass(frozen=True)
class ArchSpec:
    layers: str  # dotted path from the CausalLM to the list of decoder layers
    attention: str  # attribute of a decoder layer holding self-attention
    o_proj: str  # attribute of the attention module: the output projection
    qkv: tuple[str, ...]  # projections that gain a bias when `bias_flag` is switched on
    bias_flag: str  # config flag that gives o_proj (and qkv) a bias: the native export route


_LLAMA_LIKE = ArchSpec(
    layers="model.layers",
    attention="self_attn",
    o_proj="o_proj",
    qkv=("q_proj", "k_proj", "v_proj"),
    bias_flag="attention_bias",
)

ARCHITECTURES: dict[str, ArchSpec] = {
    "llama": _LLAMA_LIKE,
}


def arch_spec(config) -> ArchSpec:
    """The spec for a model config, or a one-line error naming what is supported."""
    spec = ARCHITECTURES.get(config.model_type)
    if spec is None:
        known = ", ".join(sorted(ARCHITECTURES))
        raise GcmEditError(
            f"architecture {config.model_type!r} is not supported for export; supported: {known}"
        )
    return spec
