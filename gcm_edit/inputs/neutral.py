"""Neutral material shipped with gcm-edit: chat prompts and a paragraph with no concept in them.

Retention (KL, perplexity) and learned scales' faithfulness term are measured on it, so
figures compare across runs and models.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml

NEUTRAL_FILE = Path(__file__).resolve().parent / "neutral.yaml"


@cache
def neutral_material() -> tuple[tuple[str, ...], str]:
    """(prompts, paragraph)."""
    data = yaml.safe_load(NEUTRAL_FILE.read_text())
    return tuple(data["prompts"]), data["text"]
