"""Turning a question (plus an optional directive) into chat-formatted prompt tokens."""

from __future__ import annotations

from typing import Literal

from gcm_edit.console import progress
from gcm_edit.inputs.recipe import Directive, Recipe

Side = Literal["original", "contrast"]
CHUNK = 1024  # conversations encoded per call: one progress step


def chat_messages(question: str, directive: Directive | None, side: Side) -> list[dict]:
    """The conversation for one prompt; with no directive the question is asked bare."""
    if directive is None:
        return [{"role": "user", "content": question}]
    text = getattr(directive, side)
    if directive.role == "system":
        return [{"role": "system", "content": text}, {"role": "user", "content": question}]
    content = f"{question} {text}" if directive.placement == "suffix" else f"{text} {question}"
    return [{"role": "user", "content": content}]


def encode_prompts(
    tokenizer, conversations: list[list[dict]], description: str = "encoding prompts"
) -> list[list[int]]:
    """Token ids of each chat prompt, ending where the assistant's answer starts. Encoded in
    batches behind a progress bar: 400k prompts (a 200k-question recipe) take minutes."""
    ids: list[list[int]] = []
    starts = range(0, len(conversations), CHUNK)
    for start in progress(starts, description):
        texts = tokenizer.apply_chat_template(
            conversations[start : start + CHUNK], add_generation_prompt=True, tokenize=False
        )
        ids += tokenizer(texts, add_special_tokens=False)["input_ids"]
    return ids


def encode_prompt(tokenizer, messages: list[dict]) -> list[int]:
    """Token ids of one chat prompt (see encode_prompts)."""
    (ids,) = encode_prompts(tokenizer, [messages])
    return ids


def bare_prompts(tokenizer, questions: list[str]) -> list[list[int]]:
    """Questions asked with no directive: how steered models are evaluated and verified."""
    return encode_prompts(tokenizer, [chat_messages(q, None, "original") for q in questions])


def training_prompts(
    recipe: Recipe, n: int | None = None
) -> list[tuple[str, list[dict], list[dict]]]:
    """(label, original conversation, contrast conversation) for the first n training items:
    explicit pairs as they are, or each question under both directives."""
    if recipe.pairs is not None:
        return [
            (
                p.original,
                chat_messages(p.original, None, "original"),
                chat_messages(p.contrast, None, "original"),
            )
            for p in recipe.pairs[:n]
        ]
    return [
        (
            q,
            chat_messages(q, recipe.directive, "original"),
            chat_messages(q, recipe.directive, "contrast"),
        )
        for q in recipe.train[:n]
    ]
