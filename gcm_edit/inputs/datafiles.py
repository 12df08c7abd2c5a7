"""Text columns from a recipe's local data files (jsonl, json, csv, parquet), checked first.

A file is checked for size and encoding before it is parsed, and every value for type and
length after, so a bad file costs one line naming the file, the row and the reason, never a
parser's traceback or minutes spent on a 50 MB "question". jsonl, json and csv are parsed
here (exact line numbers, nothing written anywhere); parquet through `datasets`, with its
cache inside gcm-edit's own.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from gcm_edit.cache import cache_root
from gcm_edit.errors import GcmEditError

FORMATS = (".jsonl", ".json", ".csv", ".parquet")
MAX_FILE_BYTES = 256 << 20  # a million questions take ~100 MB; beyond this it is not a list
MAX_TEXT_CHARS = 20_000  # one prompt; far past any model's window once tokenized
Rows = list[tuple[str, Any]]  # (where in the file, the row as parsed)


def _describe(value: Any) -> str:
    """A JSON value as a reader would name it: 'a number (42)', 'null', 'a list'."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int | float):
        return f"a number ({value})"
    return {list: "a list", dict: "an object"}.get(type(value), type(value).__name__)


def _text(path: Path, data: bytes) -> str:
    """The file as text: UTF-8 (a BOM allowed), no NUL bytes, not blank."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ValueError(
            f"line {line}: not UTF-8 text (byte {exc.start}); save the file as UTF-8"
        ) from None
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise ValueError(f"line {line}: binary data (a NUL byte); not a text file")
    if not text.strip():
        raise ValueError("is empty (no rows)")
    return text


def _jsonl(text: str) -> Rows:
    rows = []
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            rows.append((f"line {number}", json.loads(line)))
        except json.JSONDecodeError as exc:
            raise ValueError(f"line {number}: not valid JSON ({exc.msg})") from None
    return rows


def _json(text: str) -> Rows:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"line {exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, list):
        raise ValueError(f"holds {_describe(data)}; expected a list of objects [{{...}}, ...]")
    return [(f"item {i}", row) for i, row in enumerate(data, 1)]


def _csv(text: str) -> Rows:
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    rows = []
    try:
        for row in reader:
            if None in row:  # DictReader files fields beyond the header under None
                extra = len(row[None])
                raise ValueError(f"line {reader.line_num}: {extra} more field(s) than the header")
            rows.append((f"line {reader.line_num}", row))
    except csv.Error as exc:  # raised inside the record after the last complete line
        line = min(reader.line_num + 1, text.count("\n") + 1)
        raise ValueError(f"near line {line}: not valid CSV ({exc})") from None
    return rows


def _parquet(path: Path) -> Rows:
    with path.open("rb") as handle:
        head = handle.read(4)
        handle.seek(max(path.stat().st_size - 4, 0))
        tail = handle.read(4)
    if head != b"PAR1" or tail != b"PAR1":
        raise ValueError("not a parquet file (no PAR1 marks): truncated, or another format")
    from datasets import Dataset
    from datasets.utils.logging import disable_progress_bar

    disable_progress_bar()
    cache = cache_root() / "datasets"  # not ~/.cache/huggingface: we write only in our cache
    try:
        data = Dataset.from_parquet(str(path), cache_dir=str(cache), keep_in_memory=True)
    except Exception as exc:  # pyarrow and datasets raise many types for a damaged file
        raise ValueError(f"unreadable parquet ({type(exc).__name__})") from exc
    return [(f"row {i}", row) for i, row in enumerate(data.to_list(), 1)]


def _rows(path: Path) -> Rows:
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ValueError(f"is {size / 2**20:.0f} MB, more than {MAX_FILE_BYTES >> 20} MB")
    if path.suffix == ".parquet":
        rows = _parquet(path)
    else:
        parse = {".jsonl": _jsonl, ".json": _json, ".csv": _csv}[path.suffix]
        rows = parse(_text(path, path.read_bytes()))
    if not rows:
        raise ValueError("has no rows")
    for where, row in rows:
        if not isinstance(row, dict):
            raise ValueError(f"{where}: holds {_describe(row)}; expected an object of columns")
    return rows


def _value(where: str, column: str, row: dict) -> str:
    if column not in row:
        raise ValueError(f"{where}: no column {column!r}")
    value = row[column]
    if not isinstance(value, str):
        raise ValueError(f"{where}: column {column!r} holds {_describe(value)}, expected text")
    if not value.strip():
        raise ValueError(f"{where}: column {column!r} is empty")
    if len(value) > MAX_TEXT_CHARS:
        raise ValueError(
            f"{where}: column {column!r} is {len(value):,} characters (at most {MAX_TEXT_CHARS:,})"
        )
    return value


def read_columns(path: Path, columns: list[str], where: str) -> list[list[str]]:
    """Each column of `path` as a list of non-blank strings; a GcmEditError otherwise, one line
    starting with `where` and naming the file (and the row when one is at fault)."""
    if path.suffix not in FORMATS:
        raise GcmEditError(f"{where}: {path.name} is not .jsonl, .json, .csv or .parquet")
    if not path.is_file():
        problem = "is a folder, not a file" if path.is_dir() else "file not found"
        raise GcmEditError(f"{where}: {problem}: {path}")
    try:
        rows = _rows(path)
        names = list(dict.fromkeys(name for _, row in rows for name in row))
        shown = ", ".join(n if n.isprintable() else repr(n) for n in names)  # stays one line
        for column in columns:
            if column not in names:
                raise ValueError(f"has no column {column!r} (columns: {shown})")
        return [[_value(at, c, row) for at, row in rows] for c in columns]
    except ValueError as exc:
        raise GcmEditError(f"{where}: {path.name} {exc}") from None
    except OSError as exc:
        raise GcmEditError(f"{where}: cannot read {path.name} ({exc.strerror})") from None
