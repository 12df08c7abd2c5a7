"""Recipe data files: every bad file is one line naming the file, the row and the reason, and
reading them writes nothing outside gcm-edit's cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gcm_edit.errors import GcmEditError
from gcm_edit.inputs.datafiles import MAX_TEXT_CHARS, read_columns

WHERE = "recipe r.yaml: field 'train'"
BAD = [
    ("q.jsonl", b'{"question": "caf\xe9?"}\n', "line 1: not UTF-8 text (byte 17)"),
    ("q.jsonl", b"", "is empty (no rows)"),
    ("q.jsonl", b"\n  \n", "is empty (no rows)"),
    ("q.jsonl", b'{"question": "Why?"}\n{"question": "Ho', "line 2: not valid JSON"),
    ("q.jsonl", b'{"question": "Why?"}\n\x00\x01\x02', "line 2: binary data (a NUL byte)"),
    ("q.jsonl", b'{"question": 42}\n', "line 1: column 'question' holds a number (42), expected"),
    ("q.jsonl", b'{"question": null}\n', "line 1: column 'question' holds null"),
    ("q.jsonl", b'{"question": "a"}\n{"text": "b"}\n', "line 2: no column 'question'"),
    ("q.jsonl", b'["Why?"]\n', "line 1: holds a list; expected an object of columns"),
    ("q.jsonl", b'{"text": "Why?"}\n', "has no column 'question' (columns: text)"),
    (
        "q.jsonl",
        json.dumps({"question": "x" * (MAX_TEXT_CHARS + 1)}).encode(),
        f"line 1: column 'question' is {MAX_TEXT_CHARS + 1:,} characters (at most",
    ),
    ("q.json", b'{"question": "Why?"}', "holds an object; expected a list of objects"),
    ("q.json", b'[{"question": "Why?"},', "line 1: not valid JSON"),
    ("q.csv", b"question\n\n", "has no rows"),
    ("q.csv", b"text\nWhy?\n", "has no column 'question' (columns: text)"),
    ("q.csv", b'"a\nb"\nWhy?\n', "has no column 'question' (columns: 'a\\nb')"),
    ("q.csv", b'question\n"Why?\n', "not valid CSV"),
    ("q.csv", b"question\n" + b"x" * 200_000 + b"\n", "near line 2: not valid CSV (field larger"),
    ("q.parquet", b"PAR1 not really", "not a parquet file (no PAR1 marks)"),
]


@pytest.mark.parametrize(("name", "blob", "message"), BAD)
def test_bad_file_is_one_line(tmp_path, name, blob, message):
    path = tmp_path / name
    path.write_bytes(blob)
    with pytest.raises(GcmEditError) as info:
        read_columns(path, ["question"], WHERE)
    text = str(info.value)
    assert text.startswith(f"{WHERE}: {name} ") and message in text, text
    assert "\n" not in text


def test_good_files_of_every_format(tmp_path):
    import datasets

    questions = ["Why is the sky blue?", "Wie spät ist es?"]
    (tmp_path / "q.jsonl").write_text("\n".join(json.dumps({"question": q}) for q in questions))
    (tmp_path / "q.json").write_text(json.dumps([{"question": q} for q in questions]))
    (tmp_path / "q.csv").write_text("id,question\n1,Why is the sky blue?\n2,Wie spät ist es?\n")
    datasets.Dataset.from_dict({"question": questions}).to_parquet(str(tmp_path / "q.parquet"))
    for name in ("q.jsonl", "q.json", "q.csv", "q.parquet"):
        assert read_columns(tmp_path / name, ["question"], WHERE) == [questions], name


@pytest.mark.parametrize("text", ["\r\x01", "question\nWhy?,extra\n"])
def test_a_csv_row_longer_than_its_header_is_one_line(tmp_path, text):
    """Found by the fuzz below: csv.DictReader keys the surplus fields by None."""
    (tmp_path / "q.csv").write_bytes(text.encode())
    with pytest.raises(GcmEditError, match=r"q.csv line 2: 1 more field\(s\) than the header"):
        read_columns(tmp_path / "q.csv", ["question"], WHERE)


def test_a_folder_is_not_a_file(tmp_path):
    (tmp_path / "q.jsonl").mkdir()
    with pytest.raises(GcmEditError, match="is a folder, not a file"):
        read_columns(tmp_path / "q.jsonl", ["question"], WHERE)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(blob=st.binary(max_size=200), suffix=st.sampled_from([".jsonl", ".json", ".csv"]))
def test_any_bytes_are_questions_or_one_line(tmp_path, blob, suffix):
    """Whatever the bytes, the reader returns text questions or raises one GcmEditError line."""
    path = tmp_path / f"q{suffix}"
    path.write_bytes(blob)
    try:
        [questions] = read_columns(path, ["question"], WHERE)
    except GcmEditError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(WHERE)
    else:
        assert questions and all(isinstance(q, str) and q.strip() for q in questions)


def test_parquet_writes_only_in_our_cache(tmp_path):
    """datasets' own cache (~/.cache/huggingface/datasets) stays untouched."""
    import datasets

    datasets.Dataset.from_dict({"question": ["Why?"]}).to_parquet(str(tmp_path / "q.parquet"))
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "XDG_"))}
    env.update(HOME=str(home), GCM_EDIT_CACHE=str(tmp_path / "cache"))
    code = (
        "from pathlib import Path; from gcm_edit.inputs.datafiles import read_columns; "
        f"print(read_columns(Path({str(tmp_path / 'q.parquet')!r}), ['question'], 'w'))"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0 and "[['Why?']]" in done.stdout, done.stderr
    assert [p for p in home.rglob("*") if p.is_file()] == []
    assert any((tmp_path / "cache" / "datasets").rglob("*"))
