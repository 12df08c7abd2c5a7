"""The llama.cpp runtime's own logic, against transformers as the reference (no GGUF needed;
tests/checkpoint/test_gguf.py runs real GGUFs)."""

from __future__ import annotations

import random
import sys

import pytest
import torch
from transformers import NoRepeatNGramLogitsProcessor

from gcm_edit.errors import GcmEditError
from gcm_edit.model.llamacpp import LlamaCpp, banned_tokens, require_xllamacpp

VOCAB = 6


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_banned_tokens_are_transformers_no_repeat_ngram(n):
    """What llama.cpp is told to ban is what transformers' no_repeat_ngram_size sets to -inf."""
    rng = random.Random(n)
    for _ in range(300):
        sequence = [rng.randrange(VOCAB) for _ in range(rng.randrange(1, 24))]
        scores = NoRepeatNGramLogitsProcessor(n)(torch.tensor([sequence]), torch.zeros(1, VOCAB))
        expected = {t for t in range(VOCAB) if scores[0, t] == -float("inf")}
        assert banned_tokens(sequence, n) == expected, sequence


def test_no_ngram_size_bans_nothing():
    assert banned_tokens([1, 1, 1, 1], 0) == set()


def test_missing_or_broken_gguf_is_one_line(tmp_path):
    with pytest.raises(GcmEditError, match=r"missing\.gguf does not exist: export with --gguf"):
        LlamaCpp(tmp_path / "missing.gguf")
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"not a gguf")
    with pytest.raises(GcmEditError, match=r"^llama.cpp cannot load .*broken\.gguf"):
        LlamaCpp(broken)


def test_runtime_missing_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "xllamacpp", None)  # import fails
    with pytest.raises(GcmEditError, match="pip install xllamacpp"):
        require_xllamacpp()
