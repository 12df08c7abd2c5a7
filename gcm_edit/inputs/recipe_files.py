"""Recipe files: a concept named on the command line (a built-in name, a YAML path or one
sentence) read into a validated `Recipe` before any model is loaded, and a recipe written back
as YAML (the export's copy, `gcm-edit recipes new`)."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from gcm_edit.errors import GcmEditError
from gcm_edit.inputs.datafiles import MAX_FILE_BYTES, read_columns
from gcm_edit.inputs.recipe import (
    BUILTIN_DIR,
    QUESTION_FIELDS,
    PairColumns,
    PromptPair,
    Recipe,
    TextColumn,
)
from gcm_edit.inputs.recipe_checks import YAML_LOADER, check_overlap, yaml_line

RECIPE_FILE = "gcm_edit_recipe.yaml"  # the recipe an export was made with, beside its weights


def builtin_names() -> list[str]:
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml"))


def recipe_path(concept: str) -> Path:
    """`concept` is a built-in name (`verse`) or a path to a YAML recipe."""
    path = Path(concept)
    if path.suffix not in (".yaml", ".yml"):
        path = BUILTIN_DIR / f"{concept}.yaml"
        if not path.is_file():
            known = ", ".join(builtin_names())
            raise GcmEditError(
                f"unknown concept {concept!r}; known concepts: {known} (or a recipe .yaml path, "
                'or a sentence such as "Answer like a pirate.")'
            )
    elif not path.is_file():
        raise GcmEditError(f"recipe file not found: {path}")
    return path


def _read_columns(recipe_file: Path, field: str, source, columns: list[str]) -> list[list[str]]:
    path = (recipe_file.parent / source.file).resolve()
    return read_columns(path, columns, f"recipe {recipe_file}: field '{field}'")


def _materialise(recipe: Recipe, recipe_file: Path) -> Recipe:
    """Replace file references by the lists they hold, and record which files were read."""
    updates: dict = {}
    sources = [getattr(recipe, f) for f in (*QUESTION_FIELDS, "pairs")]
    files = [recipe_file.resolve()] + [
        (recipe_file.parent / source.file).resolve()
        for source in sources
        if isinstance(source, TextColumn | PairColumns)
    ]
    for field in QUESTION_FIELDS:
        source = getattr(recipe, field)
        if isinstance(source, TextColumn):
            (updates[field],) = _read_columns(recipe_file, field, source, [source.column])
    if isinstance(recipe.pairs, PairColumns):
        src = recipe.pairs
        originals, contrasts = _read_columns(
            recipe_file, "pairs", src, [src.original, src.contrast]
        )
        updates["pairs"] = [
            PromptPair(original=o, contrast=c) for o, c in zip(originals, contrasts, strict=True)
        ]
    recipe = recipe.model_copy(update=updates)
    recipe._files = files
    return recipe


def load_recipe(concept: str) -> Recipe:
    """Load and validate a recipe (built-in name, YAML path, or one sentence: a directive-only
    recipe, inputs/sentence.py) before any model is loaded."""
    from gcm_edit.inputs.sentence import is_sentence, sentence_recipe

    if is_sentence(concept):
        return sentence_recipe(concept)
    path = recipe_path(concept)
    if path.stat().st_size > MAX_FILE_BYTES:
        raise GcmEditError(f"malformed recipe {path}: more than {MAX_FILE_BYTES >> 20} MB")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise GcmEditError(
            f"malformed recipe {path}: not UTF-8 text (byte {exc.start}); a recipe is YAML"
        ) from None
    except OSError as exc:
        raise GcmEditError(f"cannot read recipe {path} ({exc.strerror})") from None
    try:
        data = yaml.load(text, Loader=YAML_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise GcmEditError(f"malformed recipe {path}{where}: not valid YAML") from exc
    if not isinstance(data, dict):
        raise GcmEditError(f"malformed recipe {path}: expected a mapping of fields at top level")
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as exc:
        # the most specific error: for a union (list or file) that is the branch that was meant
        err = max(exc.errors(), key=lambda e: len(e["loc"]))
        loc = tuple(
            p
            for p in err["loc"]
            if not (isinstance(p, str) and p.startswith(("list[", "function-")))
            and p not in ("TextColumn", "PairColumns")
        )
        message = err["msg"].removeprefix("Value error, ")
        if not loc and ": " in message:  # a cross-field check names its field first
            name, message = message.split(": ", 1)
            loc = (name,)
        field = ".".join(str(p) for p in loc) or "(top level)"
        line = yaml_line(text, loc) if loc else None
        where = f" line {line}" if line else ""
        raise GcmEditError(f"malformed recipe {path}{where}: field '{field}': {message}") from exc
    recipe = _materialise(recipe, path)
    check_overlap(recipe, path, text)
    return recipe


def recipe_yaml(recipe: Recipe) -> str:
    """The recipe as YAML, every list written out: edit it and pass it back with --concept."""
    header = (
        f"# {recipe.description}\n# Written by gcm-edit; edit it and pass it back with "
        "--concept FILE.yaml.\n"
    )
    data = recipe.model_dump(mode="json", exclude_none=True)
    return header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
