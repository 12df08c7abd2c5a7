"""Capability retention: factual answers counted as whole-word matches of accepted answers."""

from __future__ import annotations

from gcm_edit.evaluation.capability import Capability, is_answered
from gcm_edit.inputs.factual import FactualItem

PARIS = FactualItem(question="What is the capital of France?", answers=["Paris"])
FOUR = FactualItem(question="What is 2 + 2?", answers=["4", "four"])


def test_whole_words_only():
    assert is_answered("The capital of France is Paris.", PARIS)
    assert is_answered("paris", PARIS)
    assert not is_answered("Parisian food is great", PARIS)
    assert is_answered("2 + 2 = 4.", FOUR) and is_answered("It is four", FOUR)
    assert not is_answered("It is 14", FOUR) and not is_answered("about 4.5", FOUR)


def test_capability_counts_what_the_steered_model_lost():
    items = (PARIS, FOUR)
    result = Capability.judge(items, ["Paris", "4"], ["Paris", "a poem about numbers"])
    assert (result.base.k, result.steered.k, result.lost) == (2, 1, 1)
    assert result.kept_share == 0.5
    assert "factual questions answered" in result.table().markdown()
