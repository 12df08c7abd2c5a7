"""Where each architecture keeps its attention heads and how it exports, as data.

This is the only module that knows about model families: every other module asks
`arch_spec(config)` instead of branching on `model_type`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gcm_edit.errors import GcmEditError


@dataclass(frozen=True)
class ArchSpec:
    """Sites of one family. `export` says how additive steering reaches a bias:

    - "native": the family's own config flag (`bias_flag`) gives o_proj a bias;
    - "llamafy": o_proj has no bias in this family, so the export is rewritten as the
      equivalent `LlamaForCausalLM` with `attention_bias=True`.
    """

    export: Literal["native", "llamafy"]
    layers: str = "model.layers"  # dotted path from the CausalLM to the decoder layers
    attention: str = "self_attn"  # attribute of a decoder layer holding self-attention
    o_proj: str = "o_proj"  # attribute of the attention module: the output projection
    qkv: tuple[str, ...] = ("q_proj", "k_proj", "v_proj")  # gain (zero) biases with o_proj
    bias_flag: str = "attention_bias"
    fused_qkv: str | None = None  # llamafy: one projection to split into q, k, v
    fused_gate_up: str | None = None  # llamafy: one MLP projection to split into gate, up
    mlp: str = "mlp"  # attribute of a decoder layer holding the gated MLP
    mlp_proj: tuple[str, str, str] = ("gate_proj", "up_proj", "down_proj")
    mlp_act: str = "act_fn"  # attribute of the MLP module: its activation
    window: str | None = None  # llamafy: sliding-window attribute Llama cannot express
    window_switch: str | None = None  # ...and the flag that turns it on, if the family has one


_NATIVE = ArchSpec(export="native")

ARCHITECTURES: dict[str, ArchSpec] = {
    "llama": _NATIVE,
    "qwen3": _NATIVE,
    "gemma": _NATIVE,
    "gemma2": _NATIVE,
    "gemma3_text": _NATIVE,
    "olmo2": _NATIVE,
    "granite": _NATIVE,
    "smollm3": _NATIVE,
    "qwen2": ArchSpec(
        export="llamafy", window="sliding_window", window_switch="use_sliding_window"
    ),
    "mistral": ArchSpec(export="llamafy", window="sliding_window"),
    "phi3": ArchSpec(
        export="llamafy",
        qkv=(),
        fused_qkv="qkv_proj",
        fused_gate_up="mlp.gate_up_proj",
        window="sliding_window",
    ),
}


def supported() -> str:
    return ", ".join(sorted(ARCHITECTURES))


def arch_spec(config) -> ArchSpec:
    """The spec for a model config, or a one-line error naming what is supported."""
    spec = ARCHITECTURES.get(config.model_type)
    if spec is None:
        raise GcmEditError(
            f"architecture {config.model_type!r} is not supported; supported: {supported()}"
        )
    return spec


def window_limit(config) -> int | None:
    """Tokens up to which a llamafied export stays exact (None: exact at every length)."""
    spec = arch_spec(config)
    if spec.export != "llamafy" or spec.window is None:
        return None
    if spec.window_switch is not None and not getattr(config, spec.window_switch, False):
        return None
    window = getattr(config, spec.window, None)
    return int(window) if window else None
