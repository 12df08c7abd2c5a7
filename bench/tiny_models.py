"""The bench's own tiny models, built offline (nothing is downloaded): a random 3-layer Llama
with a word-level ChatML tokenizer saved as a local HF folder, and a GGUF holding only a
header and one embedding. The same shapes as the tests' builders (tests/tiny.py), kept apart so
that bench and tests share no import path."""

from __future__ import annotations

from pathlib import Path

VOCAB_SIZE = 64
SPECIAL_TOKENS = ["<unk>", "<pad>", "<|im_start|>", "<|im_end|>"]
_WORD_TEXT = (
    "user assistant system . ? , ' - : Answer in the form of a short poem paragraph "
    "How What Why do does is I my make cup tea sky blue plants grow sea moon "
    "bread water and to you it for on with cat sat mat hat sun light night bright"
)
WORDS = _WORD_TEXT.split(" ")
CHAT_TEMPLATE = (  # ChatML, as in SmolLM2 / Qwen
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def vocab() -> dict[str, int]:
    tokens = SPECIAL_TOKENS + WORDS
    tokens += [f"w{i}" for i in range(VOCAB_SIZE - len(tokens))]
    return {token: i for i, token in enumerate(tokens)}


def tiny_tokenizer():
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
    return tokenizer


def save_tiny_model_dir(folder: Path, seed: int = 0) -> Path:
    """A seeded random tiny Llama (4 query heads, 2 KV heads, head_dim 16 ≠ 48/4) and the
    tiny tokenizer, saved as a local HF folder."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    ids = vocab()
    config = LlamaConfig(
        vocab_size=VOCAB_SIZE,
        hidden_size=48,
        intermediate_size=64,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        max_position_embeddings=512,
        initializer_range=0.1,  # large enough that the random model is visibly non-linear
        tie_word_embeddings=False,
        bos_token_id=ids["<|im_start|>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<pad>"],
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).eval()
    model.generation_config.pad_token_id = config.pad_token_id
    model.generation_config.eos_token_id = config.eos_token_id
    model.save_pretrained(folder)
    tiny_tokenizer().save_pretrained(folder)
    return folder


def write_tiny_gguf(path: Path, arch: str = "llama") -> Path:
    """A GGUF of one 4×8 embedding and the header fields transformers reads for `arch`
    (gpt2 or llama), with no tokenizer."""
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
    writer.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
