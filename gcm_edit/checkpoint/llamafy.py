"""Rewrite a bias-less family (qwen2, mistral, phi3) as the same function in LlamaForCausalLM.

Their o_proj cannot carry a bias, but Llama's can (`attention_bias=True`), and the rest of
the computation is Llama's: RMSNorm, rotary attention with GQA, a gated SiLU MLP. Phi3's
fused qkv and gate_up projections are split; a sliding window is dropped, so such an export
is exact only up to the window (`architectures.window_limit`).
"""

from __future__ import annotations

import copy

import torch

from gcm_edit.errors import GcmEditError
from gcm_edit.model.architectures import arch_spec
from gcm_edit.model.heads import HeadGeometry

_COPIED = (
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "hidden_act",
    "max_position_embeddings",
    "rms_norm_eps",
    "rope_parameters",
    "tie_word_embeddings",
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
    "initializer_range",
)


def llama_config(config):
    from transformers import LlamaConfig

    rope = dict(getattr(config, "rope_parameters", None) or {})
    if rope.get("partial_rotary_factor", 1.0) != 1.0:
        raise GcmEditError(
            f"{config.model_type} with partial_rotary_factor {rope['partial_rotary_factor']} "
            "cannot be rewritten as Llama exactly; use --intervention scale or rank1"
        )
    values = {name: getattr(config, name) for name in _COPIED if hasattr(config, name)}
    extra = {}
    if hasattr(config, "original_max_position_embeddings"):
        extra["original_max_position_embeddings"] = config.original_max_position_embeddings
    return LlamaConfig(
        **values,
        **extra,
        head_dim=HeadGeometry.of(config).head_dim,
        attention_bias=True,
        mlp_bias=False,
        attention_dropout=0.0,
    )


def _split_fused(state: dict, config, spec) -> dict:
    g = HeadGeometry.of(config)
    q, kv = g.n_heads * g.head_dim, config.num_key_value_heads * g.head_dim
    out = {}
    for name, tensor in state.items():
        if spec.fused_qkv and name.endswith(f"{spec.fused_qkv}.weight"):
            prefix = name[: -len(f"{spec.fused_qkv}.weight")]
            for part, piece in zip(("q", "k", "v"), tensor.split([q, kv, kv]), strict=True):
                out[f"{prefix}{part}_proj.weight"] = piece.clone()
        elif spec.fused_gate_up and name.endswith(f"{spec.fused_gate_up}.weight"):
            prefix = name[: -len(f"{spec.fused_gate_up}.weight")]
            gate, up = tensor.chunk(2, dim=0)
            out[f"{prefix}mlp.gate_proj.weight"] = gate.clone()
            out[f"{prefix}mlp.up_proj.weight"] = up.clone()
        else:
            out[name] = tensor
    return out


@torch.no_grad()
def llamafy(model):
    """An equivalent LlamaForCausalLM with (zero) q/k/v/o biases where the source had none."""
    from transformers import LlamaForCausalLM

    spec = arch_spec(model.config)
    config = llama_config(model.config)
    param = next(model.parameters())
    state = _split_fused(model.state_dict(), model.config, spec)
    llama = LlamaForCausalLM(config).to(dtype=param.dtype, device=param.device)
    for name, tensor in llama.state_dict().items():
        if name not in state and name.endswith("_proj.bias"):
            state[name] = torch.zeros_like(tensor)
    llama.load_state_dict(state, strict=True)
    llama.generation_config = copy.deepcopy(model.generation_config)
    return llama.eval()
