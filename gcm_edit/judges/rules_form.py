"""Rule judges of the concept suite, by form: letter case, emoji, numbered lines, sentences
and their end marks, decided on the answer text alone (see rules.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from gcm_edit.judges.text import end_mark, sentences, words


@dataclass(frozen=True)
class CapitalsJudge:
    """Capitals = ≥ 90% of ≥ 20 cased letters are upper case ("OK" alone proves nothing)."""

    min_letters: int = 20
    min_share: float = 0.9
    label = "upper-case share"

    def _letters(self, text: str) -> list[str]:
        return [c for c in text if c.isupper() or c.islower()]

    def __call__(self, text: str) -> bool:
        return len(self._letters(text)) >= self.min_letters and self.grade(text) >= self.min_share

    def grade(self, text: str) -> float:
        letters = self._letters(text)
        return sum(c.isupper() for c in letters) / len(letters) if letters else 0.0


def _emoji_count(text: str) -> int:
    import emoji  # 70 ms to import: paid only where emoji are judged

    return emoji.emoji_count(text)


@dataclass(frozen=True)
class EmojiJudge:
    """Emoji = at least one emoji, as the `emoji` package (Unicode's emoji list) counts them."""

    label = "emoji / 3"

    def __call__(self, text: str) -> bool:
        return _emoji_count(text) > 0

    def grade(self, text: str) -> float:
        return min(1.0, _emoji_count(text) / 3)


_NUMBERED = re.compile(r"^\s*(\d+)[.)]\s+\S")


@dataclass(frozen=True)
class NumberedListJudge:
    """Numbered list = ≥ 3 lines opening with consecutive numbers from 1 ("1." or "1)")."""

    min_items: int = 3
    label = "numbered-line share"

    def _numbers(self, text: str) -> list[int]:
        found = (_NUMBERED.match(line) for line in text.splitlines())
        return [int(m.group(1)) for m in found if m]

    def __call__(self, text: str) -> bool:
        run = longest = 0  # the longest 1, 2, 3, ... among numbered lines (others between)
        for number in self._numbers(text):
            run = run + 1 if number == run + 1 else int(number == 1)
            longest = max(longest, run)
        return longest >= self.min_items

    def grade(self, text: str) -> float:
        lines = [line for line in text.splitlines() if line.strip()]
        return len(self._numbers(text)) / len(lines) if lines else 0.0


@dataclass(frozen=True)
class OneSentenceJudge:
    """One sentence = `sentences` finds exactly one, of ≥ 3 words, and no line break."""

    min_words: int = 3
    label = "1 / sentences"

    def __call__(self, text: str) -> bool:
        return len(sentences(text)) == 1 and len(words(text)) >= self.min_words

    def grade(self, text: str) -> float:
        count = len(sentences(text))
        return 1 / count if count else 0.0


def _share_ending(text: str, mark: str) -> float:
    """Share of the sentences whose end mark is `mark`."""
    found = sentences(text)
    return sum(end_mark(s) == mark for s in found) / len(found) if found else 0.0


@dataclass(frozen=True)
class QuestionEndJudge:
    """Question end = the last sentence ends with '?' (quotes, brackets, emoji after it aside)."""

    label = "question share"

    def __call__(self, text: str) -> bool:
        found = sentences(text)
        return bool(found) and end_mark(found[-1]) == "?"

    def grade(self, text: str) -> float:
        return _share_ending(text, "?")


@dataclass(frozen=True)
class ExclamationJudge:
    """Exclamation = ≥ 2 sentences and every one ends with '!'."""

    min_sentences: int = 2
    label = "exclamation share"

    def __call__(self, text: str) -> bool:
        return len(sentences(text)) >= self.min_sentences and self.grade(text) == 1.0

    def grade(self, text: str) -> float:
        return _share_ending(text, "!")
