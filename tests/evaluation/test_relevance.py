"""Relevance PMI against a one-sequence-at-a-time reference."""

from __future__ import annotations

import pytest
import torch

from gcm_edit.evaluation.relevance import ANSWER_TOKENS, N_OTHERS, relevance_pmi
from gcm_edit.inputs.prompts import bare_prompts

QUESTIONS = [
    "Why is the sky blue ?",
    "How do plants grow ?",
    "What is the moon made of ?",
    "How do I make a cup of tea ?",
    "Why do cats purr ?",
    "What makes bread rise ?",
]
ANSWERS = [
    "the sky is blue light",
    "plants grow with water and sun",
    "the moon is rock",
    "tea with water",
    "cats purr",
    "bread and water",
]


def _logprob(model, tokenizer, question: str, answer: str) -> float:
    prompt = bare_prompts(tokenizer, [question])[0]
    ids = tokenizer(answer, add_special_tokens=False)["input_ids"][:ANSWER_TOKENS]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([prompt + ids])).logits[0].double()
    logprobs = torch.log_softmax(logits, -1)
    return sum(float(logprobs[len(prompt) - 1 + t, tok]) for t, tok in enumerate(ids))


def test_pmi_matches_reference(llama_factory, tiny_tokenizer):
    model = llama_factory("gqa", seed=4)
    got = relevance_pmi(model, tiny_tokenizer, QUESTIONS, ANSWERS, batch_size=4)
    n = len(QUESTIONS)
    for i, answer in enumerate(ANSWERS):
        own = _logprob(model, tiny_tokenizer, QUESTIONS[i], answer)
        others = [
            _logprob(model, tiny_tokenizer, QUESTIONS[(i + j) % n], answer)
            for j in range(1, N_OTHERS + 1)
        ]
        tokens = len(tiny_tokenizer(answer, add_special_tokens=False)["input_ids"][:ANSWER_TOKENS])
        expected = (own - sum(others) / len(others)) / tokens
        assert got[i] == pytest.approx(expected, rel=1e-4, abs=1e-5), i


def test_an_answer_scored_against_its_own_question_only_is_zero(llama_factory, tiny_tokenizer):
    """With the same question everywhere, no question is more informative than another."""
    model = llama_factory("gqa", seed=4)
    same = [QUESTIONS[0]] * 3
    assert relevance_pmi(model, tiny_tokenizer, same, ANSWERS[:3]) == pytest.approx([0.0] * 3)


def test_scored_answers_keep_their_figures(llama_factory, tiny_tokenizer):
    """Scoring some answers only gives each the figure it has when all are scored: the other
    questions still come from the whole list."""
    model = llama_factory("gqa", seed=4)
    everyone = relevance_pmi(model, tiny_tokenizer, QUESTIONS, ANSWERS, batch_size=4)
    some = relevance_pmi(model, tiny_tokenizer, QUESTIONS, ANSWERS, batch_size=4, scored=[4, 1])
    assert some == pytest.approx([everyone[4], everyone[1]], rel=1e-5, abs=1e-6)
    assert relevance_pmi(model, tiny_tokenizer, QUESTIONS, ANSWERS, scored=[]) == []
