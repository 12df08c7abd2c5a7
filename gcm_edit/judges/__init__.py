"""Concept judges: is the concept present in an answer? One class per judge, one interface.

A judge is called on a text (→ bool: concept present) and has `grade(text)` (→ float: a
graded secondary figure, named by `label`, averaged in reports).
"""

from __future__ import annotations

from typing import Protocol

from gcm_edit.judges.critique import CritiqueJudge
from gcm_edit.judges.llm import LLMJudge
from gcm_edit.judges.refusal import RefusalJudge
from gcm_edit.judges.verse import VerseJudge


class Judge(Protocol):
    label: str

    def __call__(self, text: str) -> bool: ...

    def grade(self, text: str) -> float: ...


JUDGES: dict[str, type] = {
    "verse": VerseJudge,
    "refusal": RefusalJudge,
    "critique": CritiqueJudge,
}


def make_judge(name: str, url: str | None = None, question: str = "", model: str = "judge"):
    """The recipe's offline judge, or the LLM judge at `url` asking `question`."""
    if url:
        return LLMJudge(url, question, model)
    return JUDGES[name]()
