"""Fluency: a steered answer that loops or turns to word salad is a failure, whatever its concept.

Greedy decoding with no_repeat_ngram_size=3 cannot repeat a token 3-gram, so loops show up
as repeated word *bigrams*; word salad shows up as high perplexity under the base model.
"""

from __future__ import annotations

import math

import torch

from gcm_edit.inputs.recipe import Fluency
from gcm_edit.judges.text import words
from gcm_edit.model.batches import TokenBatch, response_logprob


def repeated_ngram_rate(text: str, n: int = 2) -> float:
    """Share of word n-grams that repeat an earlier one: 0 for fresh text, →1 for loops."""
    tokens = words(text)
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    if not grams:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


@torch.no_grad()
def perplexities(model, tokenizer, texts: list[str], batch_size: int = 8) -> list[float]:
    """Unconditional perplexity of each text under `model` (the base model, for fluency)."""
    start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    device = next(model.parameters()).device
    out: list[float] = []
    for i in range(0, len(texts), batch_size):
        chunk = texts[i : i + batch_size]
        ids = [tokenizer(t, add_special_tokens=False)["input_ids"] or [start] for t in chunk]
        batch = TokenBatch.build([[start]] * len(chunk), ids, tokenizer.pad_token_id).to(device)
        logprob = response_logprob(model, batch)
        out += [math.exp(-lp / len(t)) for lp, t in zip(logprob.tolist(), ids, strict=True)]
    return out


def is_fluent(text: str, perplexity: float, fluency: Fluency) -> bool:
    return (
        len(words(text)) >= fluency.min_words
        and repeated_ngram_rate(text, fluency.ngram) <= fluency.max_repeated_rate
        and perplexity <= fluency.max_perplexity
    )
