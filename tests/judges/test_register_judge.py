"""`register_judge`: a recipe may name a judge registered at run time, the pipeline judges
with it, and a name nobody registered is refused when the recipe is loaded, in one line."""

from __future__ import annotations

import pytest
import yaml
from tiny import make_llama

from gcm_edit.errors import GcmEditError
from gcm_edit.inputs.recipe import JUDGE_NAMES, LEARNED
from gcm_edit.inputs.recipe_files import load_recipe
from gcm_edit.judges import BUILTIN_JUDGES, JUDGES, make_judge, register_judge
from gcm_edit.model.generation import Decoding
from gcm_edit.pairs.contrastive import build_pairs


class EveryOtherJudge:
    """Says the concept is present on every second call (and counts its calls)."""

    label = "calls"

    def __init__(self):
        self.calls = 0

    def __call__(self, text: str) -> bool:
        self.calls += 1
        return self.calls % 2 == 0

    def grade(self, text: str) -> float:
        return float(self.calls)


@pytest.fixture
def registry():
    """The judge registry as it was, restored after the test."""
    judges, names = dict(JUDGES), list(JUDGE_NAMES)
    yield
    JUDGES.clear()
    JUDGES.update(judges)
    JUDGE_NAMES[:] = names


def recipe_file(tmp_path, judge: str):
    path = tmp_path / "recipe.yaml"
    data = {
        "name": "tiny",
        "description": "A test concept.",
        "judge": judge,
        "directive": {"original": "Answer in prose.", "contrast": "Answer in verse."},
        "train": ["Why is the sky blue?", "How do plants grow?", "What is tea?"],
        "validation": ["What is rain?"],
        "heldout": ["Why do cats purr?"],
    }
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_registered_judge_judges_the_recipe_that_names_it(registry, tmp_path, tiny_tokenizer):
    made = []

    def factory():
        made.append(EveryOtherJudge())
        return made[-1]

    register_judge("every-other", factory)
    recipe = load_recipe(str(recipe_file(tmp_path, "every-other")))
    assert recipe.judge == "every-other"
    # the recipe's names and the judges agree; a learned judge is fitted by a run
    assert set(JUDGES) | {LEARNED} == set(JUDGE_NAMES)
    assert isinstance(make_judge(recipe.judge), EveryOtherJudge)

    made.clear()
    pairs = build_pairs(make_llama(), tiny_tokenizer, recipe, decoding=Decoding(max_new_tokens=4))
    # one judge, called on the 3 original answers, then the 3 contrast ones: calls 2, 4, 6 say
    # "present": original 2 and contrasts 1 and 3 → pairs 1 and 3 kept
    assert len(made) == 1 and made[0].calls == 6
    assert [p.question for p in pairs.pairs] == ["Why is the sky blue?", "What is tea?"]


def test_an_unknown_judge_is_refused_in_one_line_naming_the_known_ones(registry, tmp_path):
    known = ", ".join([*JUDGE_NAMES, "every-other"])  # built-ins first: verse, refusal, ...
    register_judge("every-other", EveryOtherJudge)
    with pytest.raises(GcmEditError) as info:
        load_recipe(str(recipe_file(tmp_path, "sonnet")))
    message = str(info.value)
    assert "\n" not in message
    assert "field 'judge': unknown judge 'sonnet'" in message
    assert f"known judges: {known}" in message and known.startswith("verse, refusal, critique")


@pytest.mark.parametrize("name", ["", " x", "two words", "verse", LEARNED])
def test_register_judge_refuses_odd_and_builtin_names(registry, name):
    with pytest.raises(ValueError):
        register_judge(name, EveryOtherJudge)
    assert set(JUDGES) == BUILTIN_JUDGES
    assert list(JUDGES) == [n for n in JUDGE_NAMES if n != LEARNED]
