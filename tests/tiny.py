"""Shared builders: the package's tiny random models (gcm_edit/model/tiny.py) and what only
tests need: other families, pairs, plans, an unwritable folder.

Everything here is built offline from config classes; nothing is downloaded. A plain module
(on pytest's pythonpath), so tests and ddp_worker.py import it from any folder; the fixtures
wrapping these builders are in conftest.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import transformers as T

from gcm_edit.model.tiny import (
    VARIANTS,
    VOCAB_SIZE,
    llama_config,
    make_llama,
    make_tokenizer,
    save_tiny_model_dir,
    write_tiny_gguf,
)

# The models here are tiny: one thread is fastest, and it avoids OpenMP spin-wait stalls
# (tens of ms per matmul) when the cores are shared with other work.
torch.set_num_threads(1)


def random_token_ids(generator: torch.Generator, n: int, low: int = 4) -> list[int]:
    """Random non-special token ids (specials occupy ids < 4)."""
    return torch.randint(low, VOCAB_SIZE, (n,), generator=generator).tolist()


def make_pairs(n: int, seed: int = 0):
    """Pairs of random token sequences with different prompt/response lengths."""
    from gcm_edit.pairs.contrastive import Pair

    g = torch.Generator().manual_seed(seed)
    pairs = []
    for i in range(n):
        lengths = [int(x) for x in torch.randint(3, 9, (4,), generator=g)]
        pairs.append(
            Pair(
                question=f"q{i}",
                prompt_orig=random_token_ids(g, lengths[0]),
                prompt_contrast=random_token_ids(g, lengths[1]),
                response_orig=random_token_ids(g, lengths[2]),
                response_contrast=random_token_ids(g, lengths[3]),
                text_orig="",
                text_contrast="",
            )
        )
    return pairs


# model_type -> (config class, model class, extra config); head_dim 16 ≠ 48/4 where settable.
FAMILIES = {
    "llama": (T.LlamaConfig, T.LlamaForCausalLM, {"head_dim": 16}),
    "qwen3": (T.Qwen3Config, T.Qwen3ForCausalLM, {"head_dim": 16}),
    "gemma": (T.GemmaConfig, T.GemmaForCausalLM, {"head_dim": 16}),
    "gemma2": (T.Gemma2Config, T.Gemma2ForCausalLM, {"head_dim": 16, "sliding_window": 4}),
    "gemma3_text": (T.Gemma3TextConfig, T.Gemma3ForCausalLM, {"head_dim": 16, "sliding_window": 4}),
    "olmo2": (T.Olmo2Config, T.Olmo2ForCausalLM, {}),
    "granite": (T.GraniteConfig, T.GraniteForCausalLM, {"attention_multiplier": 0.2}),
    "smollm3": (T.SmolLM3Config, T.SmolLM3ForCausalLM, {}),
    "qwen2": (T.Qwen2Config, T.Qwen2ForCausalLM, {}),
    "mistral": (T.MistralConfig, T.MistralForCausalLM, {"head_dim": 16, "sliding_window": 64}),
    "phi3": (T.Phi3Config, T.Phi3ForCausalLM, {}),
}


def family_model(model_type: str, kv_heads: int, seed: int = 0):
    """A tiny random model of one decoder family (FAMILIES), with non-zero biases."""
    config_cls, model_cls, extra = FAMILIES[model_type]
    config = config_cls(
        vocab_size=64,
        hidden_size=48,
        intermediate_size=64,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=kv_heads,
        max_position_embeddings=128,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        **extra,
    )
    torch.manual_seed(seed)
    model = model_cls(config).eval()
    with torch.no_grad():  # real biases where a family has them (qwen2's q/k/v)
        for name, param in model.named_parameters():
            if name.endswith("bias"):
                param.normal_()
    return model


HEADS = [(0, 1), (0, 3), (1, 0), (2, 2), (2, 3)]  # several heads, two layers with two heads


def random_plan(geometry, seed: int = 0):
    """An additive SteeringPlan over HEADS with random vectors and scales c in [0.5, 1.5)."""
    from gcm_edit.steering.plan import SteeringPlan

    g = torch.Generator().manual_seed(seed)
    vectors = torch.randn(len(HEADS), geometry.head_dim, generator=g)
    scales = (0.5 + torch.rand(len(HEADS), generator=g)).tolist()
    return SteeringPlan(geometry, list(HEADS), vectors, alpha=1.7, scales=scales)


def rank1_plan(model, heads=HEADS, alpha: float = 1.7, seed: int = 0):
    """A rank-1 SteeringPlan over `heads`: random δ and c in [0.5, 1.5), and reads u from the
    model's own mean head outputs on random sequences, so uᵀz ≈ 1 on its typical activity."""
    from gcm_edit.model.heads import HeadGeometry
    from gcm_edit.steering.plan import SteeringPlan, read_vector
    from gcm_edit.steering.vectors import original_key, steering_vectors

    geometry = HeadGeometry.of(model.config)
    means = steering_vectors(model, make_pairs(3, seed), pad_id=1)[original_key("all")]
    g = torch.Generator().manual_seed(seed)
    return SteeringPlan(
        geometry,
        [],
        torch.zeros(0, geometry.head_dim),
        alpha,
        [],
        rank1_heads=list(heads),
        rank1_vectors=torch.randn(len(heads), geometry.head_dim, generator=g),
        rank1_reads=torch.stack([read_vector(means, layer, head) for layer, head in heads]),
        rank1_scales=(0.5 + torch.rand(len(heads), generator=g)).tolist(),
    )


def unwritable_folder(tmp_path: Path) -> Path:
    """A folder no file can be created in: mode 0o500, or (as root, whom modes do not stop)
    a process folder under /proc, where nobody can."""
    folder = tmp_path / "read-only"
    folder.mkdir(mode=0o500)
    try:
        (folder / "probe").touch()
    except PermissionError:
        return folder
    return Path(f"/proc/{os.getpid()}")


__all__ = [
    "VARIANTS",
    "family_model",
    "llama_config",
    "make_llama",
    "make_pairs",
    "make_tokenizer",
    "random_plan",
    "random_token_ids",
    "rank1_plan",
    "save_tiny_model_dir",
    "unwritable_folder",
    "write_tiny_gguf",
]
