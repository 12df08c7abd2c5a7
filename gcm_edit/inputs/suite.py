"""The concept suite: many concepts, each a directive sentence and the rule judge of it
(recipes/suite/concepts.yaml), checked before any model is loaded."""

from __future__ import annotations

from typing import Annotated

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter

from gcm_edit.inputs.recipe import BUILTIN_DIR, MAX_CUE_CHARS, _known_judge

SUITE_FILE = BUILTIN_DIR / "suite" / "concepts.yaml"


def _one_line_sentence(text: str) -> str:
    if "\n" in text or not text.endswith("."):
        raise ValueError("a directive is one line ending with '.'")
    return text


class SuiteConcept(BaseModel):
    """One concept: asked for by `sentence`, judged by the judge named `judge`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(pattern=r"^[a-z][a-z_]*$")
    sentence: Annotated[str, Field(max_length=MAX_CUE_CHARS), AfterValidator(_one_line_sentence)]
    judge: Annotated[str, AfterValidator(_known_judge)]


def _unique(concepts: list[SuiteConcept]) -> list[SuiteConcept]:
    for field in ("name", "sentence"):
        values = [getattr(c, field) for c in concepts]
        if len(set(values)) != len(values):
            raise ValueError(f"two concepts share a {field}")
    return concepts


_SUITE = TypeAdapter(Annotated[list[SuiteConcept], Field(min_length=1), AfterValidator(_unique)])


def suite_concepts() -> list[SuiteConcept]:
    """The suite's concepts, in file order (judge names as in `JUDGE_NAMES`)."""
    return _SUITE.validate_python(yaml.safe_load(SUITE_FILE.read_text()))
