"""A sentence is a concept: a directive-only recipe on the everyday question splits, judged
by a learned judge; anything else that is not a recipe is refused in one line."""

from __future__ import annotations

import pytest

from gcm_edit.errors import GcmEditError
from gcm_edit.inputs.recipe import LEARNED, MAX_CUE_CHARS, QUESTION_FIELDS
from gcm_edit.inputs.recipe_files import load_recipe
from gcm_edit.inputs.sentence import GENERAL, NEUTRAL, is_sentence, slug


def test_a_sentence_becomes_a_directive_only_recipe():
    recipe = load_recipe("  Answer  like a pirate. ")
    assert recipe.name == "answer-like-a-pirate" and recipe.judge == LEARNED
    assert recipe.description == "Answer like a pirate."
    assert (recipe.directive.role, recipe.directive.placement) == ("user", "suffix")
    assert (recipe.directive.original, recipe.directive.contrast) == (
        NEUTRAL,
        "Answer like a pirate.",
    )
    assert recipe.base_prompt.contrast == "(Answer like a pirate.)\nAnswer:\n"
    general = load_recipe(GENERAL)
    for field in QUESTION_FIELDS:
        assert getattr(recipe, field) == getattr(general, field), field
    assert recipe.files() == []  # nothing on disk the run reads, nothing --out must spare


@pytest.mark.parametrize(
    ("concept", "sentence"),
    [("verse", False), ("mine.yaml", False), ("pirate", False), ("Speak French.", True)],
)
def test_what_counts_as_a_sentence(concept, sentence):
    assert is_sentence(concept) is sentence


def test_a_single_unknown_word_names_every_way_to_give_a_concept():
    with pytest.raises(GcmEditError) as err:
        load_recipe("pirate")
    assert 'or a sentence such as "Answer like a pirate."' in str(err.value)


def test_an_overlong_sentence_is_one_line():
    with pytest.raises(GcmEditError, match=f"at most {MAX_CUE_CHARS}"):
        load_recipe("Answer " + "very " * MAX_CUE_CHARS + "briefly.")


def test_slug_keeps_the_first_words():
    assert (
        slug("Réponds en français, s'il te plaît, mon ami cher.") == "reponds-en-francais-s-il-te"
    )
    assert slug("!!! ???") == "concept"
