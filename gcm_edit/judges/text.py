"""Words of an answer, as every offline judge and the fluency figures count them."""

from __future__ import annotations

import re

_WORD = re.compile(r"[a-z']+")


def words(text: str) -> list[str]:
    """Lower-cased words (letters and apostrophes); punctuation and digits split them."""
    return _WORD.findall(text.lower())
