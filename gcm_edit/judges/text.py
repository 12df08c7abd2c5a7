"""Words and sentences of an answer, as every offline judge and the fluency figures count them."""

from __future__ import annotations

import re

# Letters of any script (accents kept whole: "été", not "t") and apostrophes.
_WORD = re.compile(r"(?:[^\W\d_]|')+")
# Closing quotes, brackets, markdown emphasis and emoji may follow a sentence's end mark.
_TRAIL = "\"'”’»)\\]}*_\u2600-\u27bf\ufe0f\u200d\U0001f000-\U0001faff"
_SENTENCE_END = re.compile(rf"([.!?…]+)[{_TRAIL}]*(?=\s|$)")
_END_MARK = re.compile(rf"([.!?…])[{_TRAIL}\s]*$")
_LIST_MARKER = re.compile(r"^\s*\d+[.)]\s+")
_LAST_TOKEN = re.compile(r"(\S+)$")
# A full stop after these is not a sentence's end ("e.g. tea", "Dr. Smith").
ABBREVIATIONS = frozenset(
    {"e.g", "i.e", "vs", "cf", "approx", "mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr"}
)


def words(text: str) -> list[str]:
    """Lower-cased words (letters of any script and apostrophes); punctuation, digits and
    underscores split them."""
    return _WORD.findall(text.lower())


def word_string(text: str) -> str:
    """The words joined by single spaces, curly apostrophes straightened and quote marks at
    word edges dropped ("'tis" → "tis"): one regex then finds whole words and phrases."""
    plain = text.replace("’", "'").replace("‘", "'")
    return " ".join(w for w in (w.strip("'") for w in words(plain)) if w)


def _abbreviation(before: str, marks: str) -> bool:
    """A lone full stop after an abbreviation or an initial ("J. K. Rowling") ends nothing."""
    last = _LAST_TOKEN.search(before)
    if not last or marks != ".":
        return False
    token = last.group(1).lstrip("([\"'“‘")
    return token.lower() in ABBREVIATIONS or (len(token) == 1 and token.isupper())


def _line_sentences(line: str) -> list[str]:
    marker = _LIST_MARKER.match(line)  # "1. " opens a list item, it ends no sentence
    start = marker.end() if marker else 0
    pieces, begin = [], 0
    for end in _SENTENCE_END.finditer(line, start):
        if not _abbreviation(line[: end.start()], end.group(1)):
            pieces.append(line[begin : end.end()])
            begin = end.end()
    pieces.append(line[begin:])
    return pieces


def sentences(text: str) -> list[str]:
    """Sentences: each ends at . ! ? or … followed by a space or the end (closing quotes,
    brackets and emoji kept with it), or at a line break. Abbreviations ("e.g."), decimals
    (3.5) and list markers ("1. ") split nothing; pieces with no letter or digit (a lone
    emoji) are no sentence."""
    pieces = (piece.strip() for line in text.splitlines() for piece in _line_sentences(line))
    return [piece for piece in pieces if any(c.isalnum() for c in piece)]


def end_mark(sentence: str) -> str:
    """The sentence's last end mark (. ! ? …) with only quotes, brackets, emphasis or emoji
    after it; "" when it has none."""
    found = _END_MARK.search(sentence)
    return found.group(1) if found else ""
