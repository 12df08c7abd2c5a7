"""Recipes: built-ins load, and every malformed recipe fails fast with one line naming the field."""

from __future__ import annotations

import pytest
import yaml

from gcm_edit.errors import GcmEditError
from gcm_edit.recipe import BUILTIN_DIR, Recipe, builtin_names, load_recipe


def _valid() -> dict:
    return {
        "name": "tiny",
        "description": "A test concept.",
        "judge": "verse",
        "directive": {"original": "Answer in prose.", "contrast": "Answer in verse."},
        "train": ["Why is the sky blue?", "How do plants grow?"],
        "validation": ["What is rain?"],
        "heldout": ["Why do cats purr?"],
    }


def _write(tmp_path, data, name: str = "recipe.yaml"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def test_builtin_recipes_load():
    """Every shipped recipe validates (a broken built-in would break the default command)."""
    names = builtin_names()
    assert "verse" in names
    for name in names:
        recipe = load_recipe(name)
        assert isinstance(recipe, Recipe)
        assert recipe.name == name


def test_verse_splits_are_disjoint_and_large_enough():
    """Held-out success is only meaningful if no held-out question was used for training."""
    recipe = load_recipe("verse")
    train, validation, heldout = (set(s) for s in (recipe.train, recipe.validation, recipe.heldout))
    assert len(recipe.train) == len(train), "duplicate training questions"
    assert len(recipe.heldout) == len(heldout), "duplicate held-out questions"
    assert not train & validation
    assert not train & heldout
    assert not validation & heldout
    assert len(train) >= 40
    assert len(validation) >= 1
    assert len(heldout) >= 20


def test_recipe_by_path_and_sha(tmp_path):
    """A recipe file path works, and its sha256 identifies its content."""
    path = _write(tmp_path, _valid())
    recipe = load_recipe(str(path))
    assert recipe.directive.role == "user" and recipe.directive.placement == "suffix"
    assert recipe.sha256() == load_recipe(str(path)).sha256()
    changed = {**_valid(), "heldout": ["Something else?"]}
    assert load_recipe(str(_write(tmp_path, changed, "other.yml"))).sha256() != recipe.sha256()


def test_builtin_recipe_by_path():
    """Passing the built-in file itself equals passing its name."""
    assert load_recipe(str(BUILTIN_DIR / "verse.yaml")) == load_recipe("verse")


def test_unknown_concept_lists_known():
    """A typo in --concept names the concepts that exist."""
    with pytest.raises(GcmEditError) as info:
        load_recipe("verze")
    message = str(info.value)
    assert "verze" in message
    assert "known concepts" in message
    for name in builtin_names():
        assert name in message
    assert "\n" not in message


def test_missing_recipe_file(tmp_path):
    with pytest.raises(GcmEditError, match="recipe file not found"):
        load_recipe(str(tmp_path / "nope.yaml"))


def _case(**changes):
    data = _valid()
    for key, value in changes.items():
        if value is _DELETE:
            del data[key]
        else:
            data[key] = value
    return data


_DELETE = object()

MALFORMED = {
    "missing-directive": (_case(directive=_DELETE), "directive"),
    "missing-name": (_case(name=_DELETE), "name"),
    "wrong-type": (_case(max_new_tokens="many"), "max_new_tokens"),
    "zero-tokens": (_case(max_new_tokens=0), "max_new_tokens"),
    "directive-not-mapping": (_case(directive="be poetic"), "directive"),
    "empty-train": (_case(train=[]), "train"),
    "empty-heldout": (_case(heldout=[]), "heldout"),
    "blank-question": (_case(train=["Why?", "   "]), "train"),
    "unknown-judge": (_case(judge="sonnet"), "judge"),
    "extra-field": (_case(colour="blue"), "colour"),
    "extra-directive-field": (
        _case(directive={"original": "a", "contrast": "b", "tone": "c"}),
        "directive.tone",
    ),
    "bad-role": (
        _case(directive={"original": "a", "contrast": "b", "role": "bot"}),
        "directive.role",
    ),
    "empty-contrast": (_case(directive={"original": "a", "contrast": ""}), "directive.contrast"),
    "bad-fluency": (_case(fluency={"max_repeated_rate": 2.0}), "fluency.max_repeated_rate"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_recipe_names_field(tmp_path, case):
    """Validation errors become one line that names the offending field."""
    data, field = MALFORMED[case]
    path = _write(tmp_path, data)
    with pytest.raises(GcmEditError) as info:
        load_recipe(str(path))
    message = str(info.value)
    assert "\n" not in message
    assert "malformed recipe" in message
    assert f"field '{field}'" in message


def test_invalid_yaml(tmp_path):
    """Broken YAML is reported as such, with the line, on one line."""
    path = _write(tmp_path, "name: x\ntrain: [unclosed\n  - y: : :\n")
    with pytest.raises(GcmEditError) as info:
        load_recipe(str(path))
    message = str(info.value)
    assert "not valid YAML" in message
    assert "line" in message
    assert "\n" not in message


@pytest.mark.parametrize("text", ["- just\n- a list\n", "plain text\n", ""])
def test_non_mapping_yaml(tmp_path, text):
    """A YAML list, scalar or empty file is not a recipe."""
    path = _write(tmp_path, text)
    with pytest.raises(GcmEditError, match="expected a mapping"):
        load_recipe(str(path))
