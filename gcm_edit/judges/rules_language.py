"""Rule judges of the concept suite, by language: py3langid (a naive Bayes over byte n-grams,
offline and deterministic) names the language of the whole answer."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import ClassVar


@cache
def _identifier():
    """py3langid's model with normalized probabilities, loaded once (0.5 s)."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


@dataclass(frozen=True)
class _LanguageJudge:
    """Present = py3langid's most probable language for the answer is `language`, on ≥ 4 words:
    a word or two ("Oui.") is too few letters to tell French from Occitan or Finnish. Words
    are counted between spaces: `words` would split "très" in two."""

    language: ClassVar[str]  # ISO 639-1 code, as py3langid names languages
    min_words: int = 4

    def __call__(self, text: str) -> bool:
        return (
            len(text.split()) >= self.min_words and _identifier().classify(text)[0] == self.language
        )

    def grade(self, text: str) -> float:
        """The language's probability among all of py3langid's languages."""
        return dict(_identifier().rank(text)).get(self.language, 0.0)


@dataclass(frozen=True)
class FrenchJudge(_LanguageJudge):
    """French = py3langid says 'fr' for the whole answer (≥ 4 words)."""

    language = "fr"
    label = "P(fr), py3langid"


@dataclass(frozen=True)
class SpanishJudge(_LanguageJudge):
    """Spanish = py3langid says 'es' for the whole answer (≥ 4 words)."""

    language = "es"
    label = "P(es), py3langid"
