"""Concept recipes: the directive pair, the question splits and how the concept is judged.

Recipes are YAML validated by pydantic before any model is loaded, so a typo costs a second,
not a model load.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gcm_edit.errors import GcmEditError

BUILTIN_DIR = Path(__file__).resolve().parent / "recipes"


class Directive(BaseModel):
    """The only difference between an original and a contrast prompt."""

    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "user"] = "user"
    placement: Literal["prefix", "suffix"] = "suffix"
    original: str = Field(min_length=1)
    contrast: str = Field(min_length=1)


class Fluency(BaseModel):
    """Fluent = long enough, few repeated word n-grams, plausible text under the base model.

    Defaults were set on SmolLM2-135M's own prompted poems (repeated-bigram rate 0.13-0.38)
    against loops (0.46-0.92) and word salad (perplexity ~1700 vs 3-40 for real answers).
    """

    model_config = ConfigDict(extra="forbid")
    ngram: int = Field(default=2, ge=1)
    max_repeated_rate: float = Field(default=0.35, ge=0.0, le=1.0)
    max_perplexity: float = Field(default=100.0, gt=1.0)
    min_words: int = Field(default=8, ge=1)


class Recipe(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    description: str = Field(min_length=1)
    judge: Literal["verse", "refusal", "critique"]
    # What an LLM judge (--judge-url) is asked about each answer; default from `description`.
    judge_question: str | None = None
    directive: Directive
    max_new_tokens: int = Field(default=96, ge=1)
    fluency: Fluency = Fluency()
    train: list[str] = Field(min_length=1)
    validation: list[str] = Field(min_length=1)
    heldout: list[str] = Field(min_length=1)

    @field_validator("train", "validation", "heldout")
    @classmethod
    def _no_blank_questions(cls, questions: list[str]) -> list[str]:
        for i, q in enumerate(questions):
            if not q.strip():
                raise ValueError(f"question {i} is empty")
        return questions

    def llm_question(self) -> str:
        return (
            self.judge_question
            or f"Does this answer show the following concept? {self.description}"
        )

    def sha256(self) -> str:
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()


def builtin_names() -> list[str]:
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml"))


def load_recipe(concept: str) -> Recipe:
    """`concept` is a built-in name (`verse`) or a path to a YAML recipe."""
    path = Path(concept)
    if path.suffix not in (".yaml", ".yml"):
        path = BUILTIN_DIR / f"{concept}.yaml"
        if not path.is_file():
            known = ", ".join(builtin_names())
            raise GcmEditError(
                f"unknown concept {concept!r}; known concepts: {known} (or a recipe .yaml path)"
            )
    elif not path.is_file():
        raise GcmEditError(f"recipe file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise GcmEditError(f"malformed recipe {path}{where}: not valid YAML") from exc
    if not isinstance(data, dict):
        raise GcmEditError(f"malformed recipe {path}: expected a mapping of fields at top level")
    try:
        return Recipe.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "(top level)"
        raise GcmEditError(f"malformed recipe {path}: field '{field}': {err['msg']}") from exc
