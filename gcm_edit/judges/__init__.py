"""Concept judges: is the concept present in an answer? One class per judge, one interface.

A judge is called on a text (→ bool: concept present) and has `grade(text)` (→ float: a
graded secondary figure, named by `label`, averaged in reports). A recipe names its offline
judge (`judge: verse`); `register_judge` adds names to the built-in ones.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from gcm_edit.judges.critique import CritiqueJudge
from gcm_edit.judges.llm import LLMJudge
from gcm_edit.judges.refusal import RefusalJudge
from gcm_edit.judges.verse import VerseJudge


class Judge(Protocol):
    label: str

    def __call__(self, text: str) -> bool: ...

    def grade(self, text: str) -> float: ...


# name → a zero-argument factory of the judge (built-ins first, then `register_judge`'s)
JUDGES: dict[str, Callable[[], Judge]] = {
    "verse": VerseJudge,
    "refusal": RefusalJudge,
    "critique": CritiqueJudge,
}
BUILTIN_JUDGES = frozenset(JUDGES)


def register_judge(name: str, factory: Callable[[], Judge]) -> None:
    """Let recipes name `name` as their judge: `factory()` (no arguments) returns the Judge.

    Registering a name again replaces its factory; the built-in names cannot be replaced.
    """
    from gcm_edit.inputs.recipe import JUDGE_NAMES

    if not isinstance(name, str) or name.split() != [name]:
        raise ValueError(f"a judge's name is one word, not {name!r}")
    if name in BUILTIN_JUDGES:
        raise ValueError(f"judge {name!r} is built in: register the judge under another name")
    if not callable(factory):
        raise TypeError(f"judge {name!r}: the factory must be callable, not {factory!r}")
    JUDGES[name] = factory
    if name not in JUDGE_NAMES:
        JUDGE_NAMES.append(name)


def make_judge(name: str, url: str | None = None, question: str = "", model: str = "judge"):
    """The recipe's offline judge, or the LLM judge at `url` asking `question`."""
    if url:
        return LLMJudge(url, question, model)
    return JUDGES[name]()
