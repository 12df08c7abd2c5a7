"""The teacher set's samples follow `seed` (a headline over seeds must vary what is random in
it), reproducibly, and the greedy answers do not; the steered set is the plan's own."""

from __future__ import annotations

import torch
from tiny import random_plan

from gcm_edit.inputs.recipe_files import load_recipe
from gcm_edit.model.generation import Decoding, generate
from gcm_edit.model.heads import HeadGeometry
from gcm_edit.pairs.teacher import build_steered_set, build_teacher_set

QUESTIONS = ["How do I make tea?", "Why is the sky blue?", "What is a cat?"]


def _teacher(model, tokenizer, seed: int, keep_greedy: bool):
    """Greedy answers kept (or refused, so that every kept answer is the first sample)."""
    rounds = []

    def keep(asked: list[str], texts: list[str]) -> list[bool]:
        rounds.append(len(rounds))
        return [keep_greedy or len(rounds) > 1] * len(texts)

    recipe = load_recipe("verse")
    decoding = Decoding(max_new_tokens=12)
    return build_teacher_set(model, tokenizer, recipe, QUESTIONS, decoding, 2, keep, 2, seed)


def test_samples_follow_the_seed_and_greedy_answers_do_not(llama_factory, tiny_tokenizer):
    model = llama_factory("gqa_head_dim16", seed=3)
    sampled = {seed: _teacher(model, tiny_tokenizer, seed, False) for seed in (0, 1)}
    for teacher in sampled.values():
        assert [e.candidate for e in teacher.examples] == [1, 1, 1]
    responses = {seed: [e.response for e in t.examples] for seed, t in sampled.items()}
    assert responses[0] != responses[1]
    again = _teacher(model, tiny_tokenizer, 1, False)
    assert [e.response for e in again.examples] == responses[1]

    greedy = {seed: _teacher(model, tiny_tokenizer, seed, True) for seed in (0, 1)}
    assert [e.candidate for e in greedy[0].examples] == [0, 0, 0]
    assert [e.response for e in greedy[0].examples] == [e.response for e in greedy[1].examples]


def test_steered_answers_are_the_plans_own_and_judged_unsteered(llama_factory, tiny_tokenizer):
    """Under the plan's hooks while generating (the answers are the hooked model's greedy
    ones), never while judging (the judges read the unedited model); every token is forced."""
    model = llama_factory("gqa_head_dim16", seed=3)
    plan = random_plan(HeadGeometry.of(model.config), seed=2)
    probe = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        unsteered = model(probe).logits

    def keep(asked: list[str], texts: list[str]) -> list[bool]:
        with torch.no_grad():  # judging sees the unedited model
            torch.testing.assert_close(model(probe).logits, unsteered, rtol=0, atol=0)
        return [True] * len(texts)

    decoding = Decoding(max_new_tokens=12)
    steered = build_steered_set(
        model, tiny_tokenizer, QUESTIONS, decoding, 2, keep, 2, 0, lambda: plan.apply(model)
    )
    prompts = [e.student_prompt for e in steered.examples]
    with plan.apply(model):
        expected = generate(model, tiny_tokenizer, prompts, decoding, 2)
    plain = generate(model, tiny_tokenizer, prompts, decoding, 2)
    assert [e.response for e in steered.examples] == expected != plain
    assert all(e.forced == len(e.response) > 0 for e in steered.examples)
    assert all(e.teacher_prompt == e.student_prompt for e in steered.examples)
    assert steered.greedy_kept == len(QUESTIONS) == steered.candidates
