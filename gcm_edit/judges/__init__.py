"""Concept judges: is the concept present in an answer? One class per judge, one interface.

A judge is called on a text (→ bool: concept present) and has `grade(text)` (→ float: a
graded secondary figure, named by `label`, averaged in reports). A recipe names its offline
judge (`judge: verse`); `register_judge` adds names to the built-in ones.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from gcm_edit.judges.critique import CritiqueJudge
from gcm_edit.judges.gguf import GgufJudge
from gcm_edit.judges.llm import LLMJudge
from gcm_edit.judges.refusal import RefusalJudge
from gcm_edit.judges.rules import (
    EarlyModernJudge,
    OceanJudge,
    PirateJudge,
    PraiseJudge,
    ThirdPersonJudge,
)
from gcm_edit.judges.rules_form import (
    CapitalsJudge,
    EmojiJudge,
    ExclamationJudge,
    NumberedListJudge,
    OneSentenceJudge,
    QuestionEndJudge,
)
from gcm_edit.judges.rules_language import FrenchJudge, SpanishJudge
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
    # the concept suite's rule judges (recipes/suite/concepts.yaml)
    "praise": PraiseJudge,
    "french": FrenchJudge,
    "spanish": SpanishJudge,
    "capitals": CapitalsJudge,
    "pirate": PirateJudge,
    "early_modern": EarlyModernJudge,
    "emoji": EmojiJudge,
    "numbered_list": NumberedListJudge,
    "one_sentence": OneSentenceJudge,
    "question_end": QuestionEndJudge,
    "ocean": OceanJudge,
    "exclamation": ExclamationJudge,
    "third_person": ThirdPersonJudge,
}
BUILTIN_JUDGES = frozenset(JUDGES)


def register_judge(name: str, factory: Callable[[], Judge]) -> None:
    """Let recipes name `name` as their judge: `factory()` (no arguments) returns the Judge.

    Registering a name again replaces its factory; the built-in names cannot be replaced.
    """
    from gcm_edit.inputs.recipe import JUDGE_NAMES, LEARNED

    if not isinstance(name, str) or name.split() != [name]:
        raise ValueError(f"a judge's name is one word, not {name!r}")
    if name in BUILTIN_JUDGES or name == LEARNED:
        raise ValueError(f"judge {name!r} is built in: register the judge under another name")
    if not callable(factory):
        raise TypeError(f"judge {name!r}: the factory must be callable, not {factory!r}")
    JUDGES[name] = factory
    if name not in JUDGE_NAMES:
        JUDGE_NAMES.append(name)


def make_judge(
    name: str, url: str | None = None, question: str = "", model: str | None = None
) -> Judge:
    """The recipe's offline judge; the LLM judge at `url` asking `question` (sending `model`
    as the model's name); or, with no `url`, the GGUF file `model` asked the same. A learned
    judge is fitted by a run (commands/learned_judge.py), not made here."""
    if url:
        return LLMJudge(url, question, model or "judge")
    if model:
        return GgufJudge(Path(model), question)
    if name not in JUDGES:
        raise ValueError(f"judge {name!r} is not a rule judge: a run fits it")
    return JUDGES[name]()
