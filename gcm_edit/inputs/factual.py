"""Short factual questions with their accepted answers, shipped with gcm-edit: does the
steered model still know what the base model knew? (capability retention)"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from pydantic import BaseModel, Field

FACTUAL_FILE = Path(__file__).resolve().parent / "factual.jsonl"


class FactualItem(BaseModel):
    question: str = Field(min_length=1)
    answers: list[str] = Field(min_length=1)  # accepted forms, e.g. ["4", "four"]


@cache
def factual_items() -> tuple[FactualItem, ...]:
    lines = FACTUAL_FILE.read_text().splitlines()
    return tuple(FactualItem(**json.loads(line)) for line in lines if line.strip())
