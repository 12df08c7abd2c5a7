"""Where a recipe's YAML says something, and whether its splits keep held-out questions
held out: checks run by `load_recipe` (recipe.py) before any model loads."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from gcm_edit.console import console
from gcm_edit.errors import GcmEditError

if TYPE_CHECKING:
    from gcm_edit.inputs.recipe import Recipe

# libyaml's loader when PyYAML has it: ten times faster on a recipe of 200k questions
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def yaml_line(text: str, loc: tuple) -> int | None:
    """1-based line of the YAML node at `loc` (keys and list indices), or its nearest parent."""
    node = yaml.compose(text, Loader=YAML_LOADER)
    line = None
    for part in loc:
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            match = [v for k, v in node.value if k.value == part]
            key = [k for k, _ in node.value if k.value == part]
            if not match:
                return line
            line = key[0].start_mark.line + 1
            node = match[0]
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line if line is not None else node.start_mark.line + 1


def _normal(text: str) -> str:
    return " ".join(text.split()).casefold().rstrip(" .?!,;:")


def check_overlap(recipe: Recipe, path: Path, text: str) -> None:
    """Held-out questions that are trained on (train, both sides of explicit pairs, the
    distillation questions) are not held out: refused, naming the field. A validation
    question in another split is tuned on or against: one warning line per split (the run
    goes on; the figures are the user's call)."""
    if recipe.pairs is None:
        trained = {"train": recipe.train}
    else:
        trained = {"pairs": [side for p in recipe.pairs for side in (p.original, p.contrast)]}
    if recipe.distill is not None:  # by default the training questions, checked already
        trained["distill"] = recipe.distill
    heldout = {_normal(q) for q in [*recipe.heldout, *(recipe.heldout_forms or [])]}
    for name, questions in trained.items():
        if shared := heldout & {_normal(q) for q in questions}:
            line = yaml_line(text, (name,))
            where = f" line {line}" if line else ""
            raise GcmEditError(
                f"malformed recipe {path}{where}: field '{name}': {len(shared)} of "
                f"{len(heldout)} held-out questions are trained on here (e.g. "
                f"{_example(shared)!r}); keep the splits disjoint, or the held-out figures "
                "are not held out"
            )
    validation = {_normal(q) for q in recipe.validation}
    for name, questions in {"held-out": recipe.heldout, **trained}.items():
        asked = {_normal(q) for q in questions}
        if shared := validation & asked:
            harm = "held-out figures are not held out"
            if name != "held-out":
                harm = "validation figures that choose the edit favour it"
            console.print(
                f"[yellow]warning:[/] recipe {path}: {len(shared)} of {len(asked)} {name} "
                f"questions are also validation questions (e.g. {_example(shared)!r}); keep "
                f"the splits disjoint or the {harm}",
                soft_wrap=True,
            )


def _example(shared: set[str]) -> str:
    """One shared question (normalised), short enough for a one-line message."""
    first = min(shared)
    return first if len(first) <= 60 else first[:57] + "..."
