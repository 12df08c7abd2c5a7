"""Tiny random models for tests and benches: a Llama built from its config class (3 layers,
4 query heads) with an offline 64-word chat tokenizer, and a header-only GGUF. Nothing is
downloaded; the weights are random, so only shapes and exactness mean anything."""

from __future__ import annotations

from pathlib import Path

import torch

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


def vocab() -> dict[str, int]:
    tokens = SPECIAL_TOKENS + WORDS
    assert len(set(tokens)) == len(tokens), "duplicate token in the tiny vocab"
    tokens += [f"w{i}" for i in range(VOCAB_SIZE - len(tokens))]
    assert len(tokens) == VOCAB_SIZE
    return {t: i for i, t in enumerate(tokens)}


def make_tokenizer():
    """A WordLevel fast tokenizer with ChatML specials and chat template (vocab 64)."""
    from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.WordLevel(vocab=vocab(), unk_token="<unk>"))
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
    ids = vocab()
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
        bos_token_id=ids["<|im_start|>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<pad>"],
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
