"""Turning a question (plus an optional directive) into chat-formatted prompt tokens."""

from __future__ import annotations

from typing import Literal

from gcm_edit.inputs.recipe import Directive, Recipe

Side = Literal["original", "contrast"]


def chat_messages(question: str, directive: Directive | None, side: Side) -> list[dict]:
    """The conversation for one prompt; with no directive the question is asked bare."""
    if directive is None:
        return [{"role": "user", "content": question}]
    text = getattr(directive, side)
    if directive.role == "system":
        return [{"role": "system", "content": text}, {"role": "user", "content": question}]
    content = f"{question} {text}" if directive.placement == "suffix" else f"{text} {question}"
    return [{"role": "user", "content": content}]


def encode_prompt(tokenizer, messages: list[dict]) -> list[int]:
    """Token ids of the chat prompt, ending where the assistant's answer starts."""
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def bare_prompts(tokenizer, questions: list[str]) -> list[list[int]]:
    """Questions asked with no directive: how steered models are evaluated and verified."""
    return [encode_prompt(tokenizer, chat_messages(q, None, "original")) for q in questions]


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
