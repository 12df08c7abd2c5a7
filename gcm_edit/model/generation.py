"""Batched greedy generation with left padding; the decoding is part of what gets evaluated."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gcm_edit.console import generation_progress


@dataclass(frozen=True)
class Decoding:
    """Greedy decoding; no_repeat_ngram_size=3 because plain greedy loops on small models.
    `stop`: strings an answer ends before (a base model goes on to ask the next question).
    `temperature` > 0 samples instead (teacher candidates), reproducibly from `seed`."""

    max_new_tokens: int = 96
    no_repeat_ngram_size: int = 3
    stop: tuple[str, ...] = ()
    temperature: float = 0.0
    seed: int = 0

    def generate_kwargs(self) -> dict:
        sampling = {"temperature": self.temperature} if self.temperature else {}
        return {
            "do_sample": bool(self.temperature),
            "max_new_tokens": self.max_new_tokens,
            "no_repeat_ngram_size": self.no_repeat_ngram_size,
            **sampling,
        }

    def __repr__(self) -> str:
        # the repr is part of stage cache keys: greedy without stop strings keeps its old one
        stop = f", stop={self.stop!r}" if self.stop else ""
        if self.temperature:
            stop += f", temperature={self.temperature!r}, seed={self.seed}"
        return (
            f"Decoding(max_new_tokens={self.max_new_tokens}, "
            f"no_repeat_ngram_size={self.no_repeat_ngram_size}{stop})"
        )


def engine() -> str:
    """What generates every answer the figures judge, with the versions that can move them."""
    import transformers

    return f"transformers {transformers.__version__}, torch {torch.__version__}"


def cut_at_stop(tokenizer, response: list[int], stops: tuple[str, ...]) -> list[int]:
    """The response up to (not including) the tokens that spell its first stop string."""
    if not stops or not any(s in tokenizer.decode(response) for s in stops):
        return response
    end = next(
        n
        for n in range(1, len(response) + 1)
        if any(s in tokenizer.decode(response[:n]) for s in stops)
    )
    start = end - 1
    while start > 0 and not any(s in tokenizer.decode(response[start:end]) for s in stops):
        start -= 1
    return response[:start]


def eos_ids(generation_config, tokenizer) -> list[int]:
    """The tokens an answer ends at: the tokenizer's EOS and the model's configured ones."""
    ids = {tokenizer.eos_token_id}
    configured = None if generation_config is None else generation_config.eos_token_id
    ids.update(configured if isinstance(configured, list) else [configured])
    return sorted(i for i in ids if i is not None)


@torch.no_grad()
def generate(
    model,
    tokenizer,
    prompts: list[list[int]],
    decoding: Decoding,
    batch_size: int = 8,
    description: str = "generating",
) -> list[list[int]]:
    """Greedy (or sampled) response token ids per prompt, cut after the first
    end-of-sequence token. Sampling draws from its own seeded stream: the global RNG is left
    as it was."""
    device = next(model.parameters()).device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(decoding.seed)
        return _generate(model, tokenizer, prompts, decoding, batch_size, description)


def _generate(model, tokenizer, prompts, decoding, batch_size, description) -> list[list[int]]:
    stops = eos_ids(model.generation_config, tokenizer)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stops[0]
    responses: list[list[int]] = []
    with generation_progress(len(prompts), description) as advance:
        for start in range(0, len(prompts), batch_size):
            chunk = prompts[start : start + batch_size]
            done = _generate_batch(model, tokenizer, chunk, decoding, stops, pad)
            advance(len(chunk), sum(map(len, done)))
            responses += done
    return responses


def _generate_batch(model, tokenizer, chunk, decoding, stops, pad) -> list[list[int]]:
    """One left-padded batch's responses, cut after the first end token and stop string."""
    device = next(model.parameters()).device
    width = max(len(p) for p in chunk)
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in chunk], device=device)
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in chunk], device=device)
    out = model.generate(
        input_ids=ids,
        attention_mask=mask,
        pad_token_id=pad,
        eos_token_id=stops,
        **decoding.generate_kwargs(),
    )
    responses = []
    for row in out[:, width:].tolist():
        cut = next((i + 1 for i, t in enumerate(row) if t in stops), len(row))
        responses.append(cut_at_stop(tokenizer, row[:cut], decoding.stop))
    return responses


def decode(tokenizer, responses: list[list[int]]) -> list[str]:
    texts = tokenizer.batch_decode(responses, skip_special_tokens=True)
    return [text.strip() for text in texts]
