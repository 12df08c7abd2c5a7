"""llama.cpp, in-process (xllamacpp): the runtime a GGUF export is checked and judged in.

Exact settings: f32 K/V cache, flash attention off, one thread. With llama.cpp's CPU defaults
(f16 K/V cache, flash attention) a steered SmolLM2 flipped a near-tie (top-two gap 0.0012)
within 24 tokens; two threads on a busy 2-core machine ran 10-50x slower than one.
Prompts go in as token ids made by the export's own tokenizer and ids come back, so both
runtimes see exactly the same tokens and answers are decoded by the same tokenizer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from gcm_edit.console import generation_progress
from gcm_edit.errors import GcmEditError
from gcm_edit.model.generation import Decoding, cut_at_stop

GREEDY = {  # llama.cpp's sampler chain reduced to argmax, with no penalty of its own
    "temperature": 0.0,
    "top_k": 1,
    "repeat_penalty": 1.0,
    "presence_penalty": 0.0,
    "frequency_penalty": 0.0,
    "dry_multiplier": 0.0,
    "cache_prompt": True,  # the next call extends this prompt: its K/V are reused
}


@dataclass(frozen=True)
class Token:
    """One generated token and its log-probability under llama.cpp (before sampling)."""

    id: int
    logprob: float


def banned_tokens(sequence: list[int], n: int) -> set[int]:
    """Tokens that would repeat an n-gram of `sequence` (transformers' no_repeat_ngram_size,
    over the whole sequence, prompt included)."""
    if n <= 0 or len(sequence) < n - 1:
        return set()
    prefix = tuple(sequence[len(sequence) - n + 1 :]) if n > 1 else ()
    return {
        sequence[i + n - 1]
        for i in range(len(sequence) - n + 1)
        if tuple(sequence[i : i + n - 1]) == prefix
    }


def require_xllamacpp():
    """The xllamacpp module; checked before any expensive work when llama.cpp will be needed."""
    try:
        import xllamacpp
    except ImportError as exc:
        raise GcmEditError(
            "the llama.cpp runtime needs xllamacpp: `pip install xllamacpp` (make setup does)"
        ) from exc
    return xllamacpp


class LlamaCpp:
    """A GGUF loaded once in llama.cpp; greedy completions of token-id prompts. `parallel`
    slots (each with `n_ctx` tokens) decode concurrent `complete` calls as one batch."""

    def __init__(self, path: Path, n_ctx: int = 2048, parallel: int = 1, threads: int = 1):
        xllamacpp = require_xllamacpp()
        if not Path(path).is_file():
            raise GcmEditError(f"{path} does not exist: export with --gguf TYPE to write it")
        params = xllamacpp.CommonParams()
        params.model.path = str(path)
        params.n_ctx = n_ctx * parallel  # shared by the slots
        params.n_parallel = parallel
        params.cpuparams.n_threads = threads
        params.cpuparams_batch.n_threads = threads
        params.cache_type_k = xllamacpp.ggml_type.GGML_TYPE_F32
        params.cache_type_v = xllamacpp.ggml_type.GGML_TYPE_F32
        params.flash_attn_type = xllamacpp.llama_flash_attn_type.LLAMA_FLASH_ATTN_TYPE_DISABLED
        params.warmup = False
        params.verbosity = 0
        self.path = Path(path)
        try:
            self._server = xllamacpp.Server(params)
        except Exception as exc:  # the binding raises plain RuntimeErrors
            raise GcmEditError(f"llama.cpp cannot load {path}: {exc}") from exc

    def complete(
        self, prompt: list[int], n: int, banned: set[int] = frozenset()
    ) -> tuple[list[Token], bool]:
        """Up to `n` greedy tokens after `prompt` (never `banned` ones) and whether llama.cpp
        stopped by itself (an end-of-generation token) rather than at `n`. Token ids only come
        back with log-probabilities (`n_probs`)."""
        request = {"prompt": prompt, "n_predict": n, "n_probs": 1, **GREEDY}
        if banned:
            request["logit_bias"] = [[token, False] for token in sorted(banned)]
        choice = self._choice(self._server.handle_completions(request))
        content = choice["logprobs"]["content"]
        # a NaN log-probability comes back as JSON null: keep it NaN, verification fails on it
        logprobs = [math.nan if e["logprob"] is None else e["logprob"] for e in content]
        tokens = [Token(e["id"], logprob) for e, logprob in zip(content, logprobs, strict=True)]
        return tokens, choice["finish_reason"] == "stop"

    def chat(self, body: dict) -> str:
        """The reply to an OpenAI-style chat request, through the GGUF's chat template."""
        return self._choice(self._server.handle_chat_completions(body))["message"]["content"]

    def _choice(self, response: dict) -> dict:
        if "error" in response:
            raise GcmEditError(f"llama.cpp ({self.path.name}): {response['error']['message']}")
        return response["choices"][0]

    def answer(
        self, prompt: list[int], decoding: Decoding, stops: list[int], tokenizer
    ) -> list[int]:
        """The response ids under `decoding`, as transformers' `generate` makes them: greedy,
        no repeated n-gram, cut after the first end token and before the first stop string.

        One token per call, with the tokens that would repeat an n-gram banned: the prompt's
        K/V stay cached between calls, so a call costs one token's compute."""
        out: list[int] = []
        for _ in range(decoding.max_new_tokens):
            banned = banned_tokens(prompt + out, decoding.no_repeat_ngram_size)
            tokens, ended = self.complete(prompt + out, 1, banned)
            out += [t.id for t in tokens]
            if ended or not tokens or out[-1] in stops:
                break
        cut = next((i + 1 for i, t in enumerate(out) if t in stops), len(out))
        return cut_at_stop(tokenizer, out[:cut], decoding.stop)

    def answers(
        self,
        prompts: list[list[int]],
        decoding: Decoding,
        stops: list[int],
        tokenizer,
        description: str = "llama.cpp",
    ) -> list[list[int]]:
        answers = []
        with generation_progress(len(prompts), description) as advance:
            for prompt in prompts:
                answers.append(self.answer(prompt, decoding, stops, tokenizer))
                advance(1, len(answers[-1]))
        return answers
