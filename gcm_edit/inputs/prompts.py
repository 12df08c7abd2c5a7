"""Turning a question (plus an optional directive) into chat-formatted prompt tokens."""

from __future__ import annotations

import json
from typing import Literal

from gcm_edit.console import progress
from gcm_edit.errors import GcmEditError
from gcm_edit.inputs.recipe import BasePrompt, Directive, Recipe

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


def base_chat_template(base: BasePrompt, bos: bool) -> str:
    """A Jinja chat template that renders a conversation through a recipe's plain-text
    `base_prompt`: the user message fills `{question}`, a system message (the directive's
    side, see Recipe.for_base_model) fills `{cue}`, else the `bare` cue. Installed on a
    tokenizer that has no template, it makes every prompt path (and the exported
    tokenizer) speak the base format."""
    slots = {"{question}": "ns.question", "{cue}": "ns.cue"}
    body = "".join(
        "{{ " + (slots[piece] if piece in slots else json.dumps(piece)) + " }}"
        for piece in base.pieces()
        if piece
    )
    return (
        "{%- set ns = namespace(question='', cue=" + json.dumps(base.bare) + ") -%}"
        "{%- for m in messages -%}"
        "{%- if m['role'] == 'system' -%}{%- set ns.cue = m['content'] -%}"
        "{%- elif m['role'] == 'user' -%}{%- set ns.question = m['content'] -%}{%- endif -%}"
        "{%- endfor -%}" + ("{{ bos_token }}" if bos else "") + body
    )


def adds_bos(tokenizer) -> bool:
    """Whether plain encoding starts with BOS (Gemma needs it; Qwen has none)."""
    bos = tokenizer.bos_token_id
    return bos is not None and tokenizer("a")["input_ids"][:1] == [bos]


def choose_prompt_format(
    recipe: Recipe, tokenizer, wanted: str, model_name: str
) -> tuple[Recipe, str]:
    """`chat` (the tokenizer's own template) or `base` (the recipe's `base_prompt`, installed
    as the tokenizer's template); `auto` takes chat when there is a template."""
    if wanted == "chat" or (wanted == "auto" and tokenizer.chat_template):
        if not tokenizer.chat_template:
            raise GcmEditError(
                f"{model_name} has no chat template: use --prompt-format base (or auto) "
                "with a recipe that has a base_prompt"
            )
        return recipe, "chat"
    if recipe.base_prompt is None:
        raise GcmEditError(
            f"recipe {recipe.name!r} has no base_prompt"
            + ("" if tokenizer.chat_template else f" and {model_name} has no chat template")
            + ": add a base_prompt (a plain-text template with {question} and {cue})"
        )
    tokenizer.chat_template = base_chat_template(recipe.base_prompt, adds_bos(tokenizer))
    return recipe.for_base_model(), "base"


def prefill_ids(tokenizer, recipe: Recipe) -> dict[Side, list[int]]:
    """Token ids of the recipe's prefill per side ([] where none); a prefill the tokenizer
    cannot encode faithfully is refused."""
    out: dict[Side, list[int]] = {}
    for side in ("original", "contrast"):
        text = getattr(recipe.prefill, side)
        ids = tokenizer(text, add_special_tokens=False)["input_ids"] if text else []
        if text and (
            tokenizer.unk_token_id in ids or tokenizer.decode(ids).strip() != text.strip()
        ):
            raise GcmEditError(
                f"recipe {recipe.name!r}: prefill.{side} {text!r} does not survive this "
                f"model's tokenizer (it decodes to {tokenizer.decode(ids)!r}); reword it"
            )
        out[side] = ids
    return out


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
