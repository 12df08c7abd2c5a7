"""Shared builders: tiny random Llama models, a tiny offline chat tokenizer, a saved HF folder.

Everything here is built offline from config classes; nothing is downloaded. A plain module
(on pytest's pythonpath), so tests and ddp_worker.py import it from any folder; the fixtures
wrapping these builders are in conftest.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import transformers as T

# The models here are tiny: one thread is fastest, and it avoids OpenMP spin-wait stalls
# (tens of ms per matmul) when the cores are shared with other work.
torch.set_num_threads(1)

VOCAB_SIZE = 64

SPECIAL_TOKENS = ["<unk>", "<pad>", "<|im_start|>", "<|im_end|>"]
_WORD_TEXT = (
    "user assistant system . ? , ' - : Answer in the form of a short poem paragraph "
    "How What Why do does is I my make cup tea sky blue plants grow sea moon "
    "bread water and to you it for on with cat sat mat hat sun light night bright"
)
WORDS = _WORD_TEXT.split(" ")

# ChatML, as in SmolLM2 / Qwen.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# name -> (num_key_value_heads, head_dim); hidden 48 and 4 query heads throughout.
VARIANTS = {
    "gqa": (2, 12),
    "mha": (4, 12),
    "gqa_head_dim16": (2, 16),  # head_dim != hidden_size / num_heads (48 / 4 = 12)
    "mha_head_dim16": (4, 16),
}


def _vocab() -> dict[str, int]:
    tokens = SPECIAL_TOKENS + WORDS
    assert len(set(tokens)) == len(tokens), "duplicate token in the tiny vocab"
    tokens += [f"w{i}" for i in range(VOCAB_SIZE - len(tokens))]
    assert len(tokens) == VOCAB_SIZE
    return {t: i for i, t in enumerate(tokens)}


def make_tokenizer():
    """A WordLevel fast tokenizer with ChatML specials and chat template (vocab 64)."""
    from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.WordLevel(vocab=_vocab(), unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    raw.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw,
        unk_token="<unk>",
        pad_token="<pad>",
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    assert len(tokenizer) == VOCAB_SIZE
    return tokenizer


def llama_config(variant: str = "gqa_head_dim16", **overrides):
    from transformers import LlamaConfig

    kv_heads, head_dim = VARIANTS[variant]
    vocab = _vocab()
    kwargs = dict(
        vocab_size=VOCAB_SIZE,
        hidden_size=48,
        intermediate_size=64,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=kv_heads,
        head_dim=head_dim,
        max_position_embeddings=512,
        initializer_range=0.1,  # large enough that the random model is visibly non-linear
        tie_word_embeddings=False,
        bos_token_id=vocab["<|im_start|>"],
        eos_token_id=vocab["<|im_end|>"],
        pad_token_id=vocab["<pad>"],
    )
    kwargs.update(overrides)
    return LlamaConfig(**kwargs)


def make_llama(variant: str = "gqa_head_dim16", seed: int = 0, dtype=torch.float32, **overrides):
    """A seeded, randomly initialised tiny LlamaForCausalLM in eval mode."""
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    model = LlamaForCausalLM(llama_config(variant, **overrides))
    model.generation_config.pad_token_id = model.config.pad_token_id
    model.generation_config.eos_token_id = model.config.eos_token_id
    return model.to(dtype).eval()


def save_tiny_model_dir(folder: Path) -> Path:
    """Write a tiny Llama + tiny chat tokenizer as a local HF folder."""
    make_llama("gqa_head_dim16", seed=0).save_pretrained(folder)
    make_tokenizer().save_pretrained(folder)
    return folder


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


def write_tiny_gguf(path: Path, arch: str, **strings: str) -> Path:
    """A GGUF of one 4×8 embedding and the header fields transformers reads for `arch`
    (gpt2 or llama), no tokenizer, plus `strings` as metadata (`general.source.repo_url`)."""
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_context_length(64)
    writer.add_embedding_length(8)
    writer.add_block_count(1)
    writer.add_head_count(2)
    writer.add_feed_forward_length(16)
    if arch == "llama":
        writer.add_head_count_kv(2)
        writer.add_layer_norm_rms_eps(1e-5)
    else:
        writer.add_layer_norm_eps(1e-5)
    for key, value in strings.items():
        writer.add_string(key.replace("__", "."), value)
    writer.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
