"""A concept given as one sentence ("Answer like a pirate."): a directive-only recipe.

The sentence is the contrast directive, a user-turn suffix (SmolLM2-135M ignores system
prompts: docs/design.md); the question splits are the built-in everyday questions (those of
the verse recipe: how/what/why questions with no concept of their own, disjoint as a
recipe's are); the judge is learned from the model's own answers with and without the
sentence (judges/learned.py). The recipe is plain YAML with every list written out, so a
run is repeated, or the recipe edited, with `--concept that.yaml`.
"""

from __future__ import annotations

import re
import unicodedata

from gcm_edit.errors import GcmEditError
from gcm_edit.inputs.recipe import LEARNED, MAX_CUE_CHARS, QUESTION_FIELDS, Recipe
from gcm_edit.inputs.recipe_files import builtin_names, load_recipe

GENERAL = "verse"  # the built-in recipe whose question splits every sentence concept uses
NEUTRAL = "Answer the question."  # the original side: the same place, no concept
SLUG_WORDS = 6


def is_sentence(concept: str) -> bool:
    """Neither a built-in name nor a path to a recipe file: words with a space between."""
    return (
        concept not in builtin_names()
        and not concept.endswith((".yaml", ".yml"))
        and len(concept.split()) > 1
    )


def slug(sentence: str) -> str:
    """The recipe's name: its first words, lower-case, accents dropped, joined by hyphens."""
    plain = unicodedata.normalize("NFKD", sentence).encode("ascii", "ignore").decode()
    words = re.findall(r"[a-z0-9]+", plain.lower())
    return "-".join(words[:SLUG_WORDS]) or "concept"


def sentence_recipe(sentence: str) -> Recipe:
    """The directive-only recipe for `sentence` (validated like any recipe)."""
    sentence = " ".join(sentence.split())
    if len(sentence) > MAX_CUE_CHARS:
        raise GcmEditError(
            f"a concept sentence of {len(sentence)} characters; at most {MAX_CUE_CHARS} "
            "(a longer directive belongs in a recipe .yaml)"
        )
    general = load_recipe(GENERAL)
    data = {
        "name": slug(sentence),
        "description": sentence,
        "judge": LEARNED,
        "directive": {
            "role": "user",
            "placement": "suffix",
            "original": NEUTRAL,
            "contrast": sentence,
        },
        "base_prompt": {
            "template": "Question: {question}\n{cue}",
            "bare": "Answer:\n",
            "original": "Answer:\n",
            "contrast": f"({sentence})\nAnswer:\n",
            "stop": general.base_prompt.stop,
        },
        "max_new_tokens": general.max_new_tokens,
        **{field: list(getattr(general, field)) for field in QUESTION_FIELDS},
    }
    return Recipe.model_validate(data)
