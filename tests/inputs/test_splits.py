"""Evaluation data: built-in splits are large enough, duplicate-free and pairwise disjoint
(after normalising case, whitespace and trailing punctuation), and the factual set is sound."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

import gcm_edit.inputs
from gcm_edit.inputs.recipe import Recipe
from gcm_edit.inputs.recipe_files import builtin_names, load_recipe

FACTUAL = Path(gcm_edit.inputs.__file__).parent / "factual.jsonl"

# (validation, held-out) minimum sizes of the shipped recipes
MIN_SIZES = {"verse": (60, 120), "refusal": (30, 60), "sycophancy": (20, 60)}


def normalise(text: str) -> str:
    """Case, runs of whitespace and trailing punctuation do not make two prompts different."""
    return re.sub(r"\s+", " ", text).strip().casefold().rstrip(" .?!,;:")


def duplicates(texts: list[str]) -> list[str]:
    counts = Counter(normalise(t) for t in texts)
    return sorted(t for t, n in counts.items() if n > 1)


def overlap(a: list[str], b: list[str]) -> list[str]:
    return sorted({normalise(t) for t in a} & {normalise(t) for t in b})


def train_texts(recipe: Recipe) -> list[str]:
    """Training questions, or both texts of every explicit training pair."""
    if recipe.pairs is not None:
        return [text for pair in recipe.pairs for text in (pair.original, pair.contrast)]
    return list(recipe.train or [])


def split_problems(splits: dict[str, list[str]]) -> list[str]:
    """Duplicates inside a split and items shared by two splits, as readable messages."""
    problems = [
        f"{name}: duplicate {dup!r}" for name, texts in splits.items() for dup in duplicates(texts)
    ]
    names = list(splits)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            problems += [f"{a} & {b}: shared {t!r}" for t in overlap(splits[a], splits[b])]
    return problems


@pytest.mark.parametrize("name", builtin_names())
def test_builtin_splits_are_duplicate_free_and_disjoint(name):
    """Held-out numbers mean nothing if a held-out prompt was trained on or tuned against."""
    recipe = load_recipe(name)
    splits = {
        "train": train_texts(recipe),
        "validation": recipe.validation,
        "heldout": recipe.heldout,
        "heldout_forms": recipe.heldout_forms or [],
        "distill": recipe.distill or [],
    }
    assert split_problems(splits) == []


@pytest.mark.parametrize(("name", "sizes"), sorted(MIN_SIZES.items()))
def test_builtin_splits_are_large_enough(name, sizes):
    """Enough validation and held-out prompts for adherence rates with a usable error bar."""
    recipe = load_recipe(name)
    min_validation, min_heldout = sizes
    assert len(recipe.validation) >= min_validation
    assert len(recipe.heldout) >= min_heldout


def test_builtin_sizes_cover_every_recipe():
    """A new built-in recipe gets minimum sizes too."""
    assert set(MIN_SIZES) == set(builtin_names())


def test_checks_catch_duplicates_and_leaks():
    """The checks above fail on a repeated item, even one differing in case and punctuation."""
    splits = {"train": ["Why is the sky blue?"], "validation": ["How do clouds form?"]}
    assert split_problems(splits) == []
    repeated = {**splits, "validation": ["How do clouds form?", "how do  clouds form"]}
    assert split_problems(repeated) == ["validation: duplicate 'how do clouds form'"]
    leaked = {**splits, "heldout": ["WHY is the sky blue."]}
    assert split_problems(leaked) == ["train & heldout: shared 'why is the sky blue'"]


def _factual() -> list[dict]:
    lines = FACTUAL.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def test_factual_set_is_well_formed():
    """Capability retention: >= 100 questions, each with accepted answers, none repeated."""
    items = _factual()
    assert len(items) >= 100
    for item in items:
        assert set(item) == {"question", "answers"}, item
        assert isinstance(item["question"], str) and item["question"].strip(), item
        answers = item["answers"]
        assert isinstance(answers, list) and answers, item
        assert all(isinstance(a, str) and a.strip() for a in answers), item
        assert len(set(map(normalise, answers))) == len(answers), f"repeated answer: {item}"
    assert duplicates([item["question"] for item in items]) == []


def test_other_forms_teacher_pool_is_held_apart():
    """bench/distill.py teaches on recipes/data/distill-forms.jsonl: no question of it may be
    validated on, held out, or in the default teacher pool."""
    path = Path(gcm_edit.inputs.__file__).parents[1] / "recipes" / "data" / "distill-forms.jsonl"
    pool = [json.loads(line)["question"] for line in path.read_text().splitlines()]
    recipe = load_recipe("verse")
    splits = {"forms pool": pool, "validation": recipe.validation, "heldout": recipe.heldout}
    splits |= {"heldout_forms": recipe.heldout_forms, "distill": recipe.distill}
    assert len(pool) == 128 and split_problems(splits) == []
