"""Verse: line structure decides; rhyme (CMU pronouncing dictionary) is the graded figure."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from gcm_edit.judges.text import words

_LIST_ITEM = re.compile(r"^\s*([-*•]|\d+[.)])\s+")


@cache
def _rhyming_part(word: str) -> str:
    import pronouncing

    phones = pronouncing.phones_for_word(word)
    return pronouncing.rhyming_part(phones[0]) if phones else word[-3:]


def rhymes(a: str, b: str) -> bool:
    return a != b and _rhyming_part(a) == _rhyming_part(b)


@dataclass(frozen=True)
class VerseJudge:
    """Verse = several short lines (not a list); rhyme, via the CMU dictionary, is reported.

    SmolLM2-135M's prompted poems rarely rhyme, so line structure is the deciding signal
    and the share of lines that rhyme with a neighbour is a secondary figure.
    """

    min_lines: int = 4
    max_words_per_line: int = 12
    min_short_share: float = 0.75

    def lines(self, text: str) -> list[str]:
        return [line for line in text.splitlines() if words(line)]

    def __call__(self, text: str) -> bool:
        lines = self.lines(text)
        if len(lines) < self.min_lines:
            return False
        short = [
            not _LIST_ITEM.match(line) and len(words(line)) <= self.max_words_per_line
            for line in lines
        ]
        return sum(short) / len(lines) >= self.min_short_share

    label = "rhyme share"

    def grade(self, text: str) -> float:
        """Share of lines whose last word rhymes with the last word of a line ≤2 lines away."""
        ends = [words(line)[-1] for line in self.lines(text)]
        if len(ends) < 2:
            return 0.0
        rhymed = {
            k
            for i in range(len(ends))
            for j in (i + 1, i + 2)
            if j < len(ends) and rhymes(ends[i], ends[j])
            for k in (i, j)
        }
        return len(rhymed) / len(ends)
