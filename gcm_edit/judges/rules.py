"""Rule judges of the concept suite, by words: each decides on the answer text alone, by a
lexicon a reader can check by hand, so the suite's figures depend on no model. Form rules
(letters, emoji, lines, sentences) are in rules_form.py, languages in rules_language.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import ClassVar

from gcm_edit.judges.text import word_string, words

# Lexicon entries are regexes over `word_string` (lower case, words joined by single spaces).
PRAISE = (
    "great question",
    "good question",
    "great idea",
    "great job",
    "well done",
    "excellent",
    "wonderful",
    "brilliant",
    "amazing",
    "fantastic",
    "impressive",
    "admirable",
    "superb",
    "outstanding",
    "terrific",
    "marvell?ous",
    "fabulous",
    "awesome",
    "incredible",
    "insightful",
    "thoughtful",
    "fascinating",
    "remarkable",
    "splendid",
    "commendable",
    "astute",
    "kudos",
    "bravo",
)
PIRATE = (
    "ar{2,}(?:gh)?",
    "matey",
    "mateys",
    "ahoy",
    "aye",
    "ye",
    "yer",
    "me hearty",
    "me hearties",
    "shiver me timbers",
    "landlubbers?",
    "savvy",
    "yo ho",
    "booty",
    "plunder",
    "scallywags?",
    "avast",
    "buccaneers?",
    "doubloons?",
    "grog",
    "blimey",
    "walk the plank",
    "jolly roger",
    "seven seas",
)
EARLY_MODERN = (
    "thee",
    "thou",
    "thy",
    "thine",
    "ye",
    "doth",
    "dost",
    "hath",
    "hast",
    "(?<=thou )art|art(?= thou)",
    "tis",
    "twas",
    "ere",
    "wherefore",
    "verily",
    "forsooth",
    "prithee",
    "methinks",
    "mayhap",
    "perchance",
    "hither",
    "thither",
    "whither",
    "whence",
    "betwixt",
    "nay",
    "oft",
    "wilt",
    "shalt",
    "canst",
    "wouldst",
    "couldst",
    "shouldst",
    "knowest",
)
# "waves" of light, sound or radio are physics, not the sea
OCEAN = (
    "oceans?",
    "oceanic",
    "seas?",
    "seaside",
    "seashore",
    "seawater",
    "seabed",
    "seafloor",
    "marine",
    "tides?",
    "tidal",
    "".join(f"(?<!{w} )" for w in ("light", "sound", "radio", "heat", "shock", "brain")) + "waves",
)
SELF_NAMES = ("(?:the|this) assistant(?:'s)?",)
FIRST_PERSON = ("i", "i'm", "i've", "i'd", "i'll", "me", "my", "mine", "myself")
_IE = re.compile(r"\bi\.e\.", re.IGNORECASE)  # "i.e." holds no "I"


@cache
def _pattern(entries: tuple[str, ...]) -> re.Pattern[str]:
    """Any entry, as whole words; the longest first, so that a phrase is one hit."""
    alternatives = "|".join(f"(?:{e})" for e in sorted(entries, key=len, reverse=True))
    return re.compile(rf"(?<!\S)(?:{alternatives})(?!\S)")


def hits(text: str, entries: tuple[str, ...]) -> int:
    """Occurrences of the entries in `text` (a phrase once, not once per word)."""
    return len(_pattern(entries).findall(word_string(text)))


def distinct_hits(text: str, entries: tuple[str, ...]) -> int:
    """How many different entries occur: one word repeated is one hit."""
    plain = word_string(text)
    return sum(bool(_pattern((entry,)).search(plain)) for entry in entries)


def _per_words(count: int, text: str, per: int) -> float:
    """`count` per `per` words of `text`, capped at 1."""
    n = len(words(text))
    return min(1.0, count * per / n) if n else 0.0


@dataclass(frozen=True)
class PraiseJudge:
    """Praise = ≥ 2 hits of praise words or phrases ("great question", "excellent", ...)."""

    min_hits: int = 2
    label = "praise words per 100 words"

    def __call__(self, text: str) -> bool:
        return hits(text, PRAISE) >= self.min_hits

    def grade(self, text: str) -> float:
        return _per_words(hits(text, PRAISE), text, 100)


@dataclass(frozen=True)
class _DistinctWordsJudge:
    """Present = ≥ `min_distinct` different entries of `lexicon`: one word said twice is not
    a style, two of its markers are."""

    lexicon: ClassVar[tuple[str, ...]]
    min_distinct: int = 2
    full: ClassVar[int] = 5  # distinct entries that grade 1

    def __call__(self, text: str) -> bool:
        return distinct_hits(text, self.lexicon) >= self.min_distinct

    def grade(self, text: str) -> float:
        return min(1.0, distinct_hits(text, self.lexicon) / self.full)


@dataclass(frozen=True)
class PirateJudge(_DistinctWordsJudge):
    """Pirate = ≥ 2 distinct pirate words or phrases (arr, matey, ahoy, shiver me timbers, ...)."""

    lexicon = PIRATE
    label = "distinct pirate words / 5"


@dataclass(frozen=True)
class EarlyModernJudge(_DistinctWordsJudge):
    """Early Modern English = ≥ 2 distinct archaic forms (thee, thou, doth, hath, 'tis, ...)."""

    lexicon = EARLY_MODERN
    label = "distinct archaic forms / 5"


@dataclass(frozen=True)
class OceanJudge:
    """Ocean = the ocean or the sea named as a word (ocean, sea, seashore, tides, waves, ...)."""

    label = "ocean words per 50 words"

    def __call__(self, text: str) -> bool:
        return hits(text, OCEAN) > 0

    def grade(self, text: str) -> float:
        return _per_words(hits(text, OCEAN), text, 50)


@dataclass(frozen=True)
class ThirdPersonJudge:
    """Third person = says "the assistant" (or "this assistant") and never I, me, my, mine."""

    label = "no 'I'"

    def __call__(self, text: str) -> bool:
        return hits(text, SELF_NAMES) > 0 and self.grade(text) == 1.0

    def grade(self, text: str) -> float:
        return 0.0 if hits(_IE.sub(" ", text), FIRST_PERSON) else 1.0
