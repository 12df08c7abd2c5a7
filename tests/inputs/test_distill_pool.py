"""The distillation question pool: large enough, duplicate-free, well-formed, and disjoint from
every recipe's training, validation and held-out questions (after the same normalisation as
test_splits), so a distilled edit never learns from a prompt it is tuned or scored on."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from test_splits import duplicates, normalise

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
DATA = RECIPES / "data"
POOL = DATA / "distill-questions.jsonl"


def _questions(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["question"] for line in lines if line.strip()]


def _evaluation_questions() -> list[str]:
    """The `question` column of every validation and held-out file in recipes/data."""
    paths = sorted(DATA.glob("*-validation.jsonl")) + sorted(DATA.glob("*-heldout.jsonl"))
    assert paths, f"no validation or held-out files in {DATA}"
    return [q for path in paths for q in _questions(path)]


def _training_questions() -> list[str]:
    """Every recipe's `train` list and both sides of its `pairs`."""
    paths = sorted(RECIPES.glob("*.yaml"))
    assert paths, f"no recipes in {RECIPES}"
    texts: list[str] = []
    for path in paths:
        recipe = yaml.safe_load(path.read_text(encoding="utf-8"))
        texts += recipe.get("train") or []
        for pair in recipe.get("pairs") or []:
            texts += [pair["original"], pair["contrast"]]
    return texts


def test_pool_is_large_and_well_formed():
    pool = _questions(POOL)
    assert len(pool) >= 300
    for item in pool:
        assert isinstance(item, str) and item.strip(), item
        assert len(item) <= 300, item


def test_pool_has_no_duplicates():
    assert duplicates(_questions(POOL)) == []


def test_pool_is_disjoint_from_recipe_questions():
    pool = {normalise(q) for q in _questions(POOL)}
    used = {normalise(q) for q in _evaluation_questions() + _training_questions()}
    assert sorted(pool & used) == []
