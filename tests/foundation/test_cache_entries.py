"""Cache entries: written with kind, schema, key and checksum; anything damaged, or written for
another key, is discarded."""

from __future__ import annotations

import json

import pytest
import torch

from gcm_edit.cache import SCHEMA, load_entry, store_entry


def _same(value):
    return value


@pytest.fixture
def json_entry(tmp_path):
    path = tmp_path / "answers-x.json"
    store_entry(path, "answers", "x", ["a", "b"])
    return path


@pytest.fixture
def tensor_entry(tmp_path):
    path = tmp_path / "scores-x.safetensors"
    store_entry(path, "head scores", "x", {"scores": torch.arange(6.0).view(2, 3)})
    return path


def test_round_trips(json_entry, tensor_entry):
    assert load_entry(json_entry, "answers", "x", _same) == ["a", "b"]
    loaded = load_entry(tensor_entry, "head scores", "x", _same)
    torch.testing.assert_close(loaded["scores"], torch.arange(6.0).view(2, 3))
    assert json.loads(json_entry.read_text())["schema"] == SCHEMA


def test_missing_entry_is_none(tmp_path):
    assert load_entry(tmp_path / "nothing.json", "answers", "x", _same) is None


def _damaged(path, capsys) -> str:
    """Assert the entry is reported in one line, removed, and None comes back."""
    assert load_entry(path, KINDS[path.suffix], "x", _same) is None
    assert not (path.exists() or path.is_symlink())
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and "cache:" in lines[0] and "recomputing" in lines[0], lines
    return lines[0]


KINDS = {".json": "answers", ".safetensors": "head scores"}


def test_garbled_json_is_discarded(json_entry, capsys):
    json_entry.write_text('{"kind": "answers", "sch')
    _damaged(json_entry, capsys)


def test_edited_json_fails_its_checksum(json_entry, capsys):
    data = json.loads(json_entry.read_text())
    data["data"][0] = "tampered"
    json_entry.write_text(json.dumps(data))
    assert "checksum" in _damaged(json_entry, capsys)


def test_entry_of_another_kind_or_schema_is_discarded(json_entry, capsys):
    data = json.loads(json_entry.read_text())
    json_entry.write_text(json.dumps({**data, "schema": SCHEMA - 1}))
    _damaged(json_entry, capsys)


def test_plain_json_from_an_older_version_is_discarded(json_entry, capsys):
    json_entry.write_text(json.dumps(["a", "b"]))
    _damaged(json_entry, capsys)


def test_truncated_tensors_are_discarded(tensor_entry, capsys):
    blob = tensor_entry.read_bytes()
    tensor_entry.write_bytes(blob[: len(blob) - 7])
    _damaged(tensor_entry, capsys)


def test_edited_tensor_fails_its_checksum(tensor_entry, capsys):
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(tensor_entry), framework="pt") as f:
        meta, scores = f.metadata(), f.get_tensor("scores")
    scores[0, 0] = 99.0
    save_file({"scores": scores}, str(tensor_entry), metadata=meta)
    assert "checksum" in _damaged(tensor_entry, capsys)


def test_decode_rejection_is_discarded(json_entry, capsys):
    """The caller's own validation (e.g. the wrong number of answers) counts as damage."""

    def decode(texts):
        raise ValueError("expected 3 answers")

    assert load_entry(json_entry, "answers", "x", decode) is None
    assert "expected 3 answers" in capsys.readouterr().err
    assert not json_entry.exists()


def test_writes_are_atomic(tmp_path, monkeypatch):
    """A write that dies half-way leaves the old entry, and no temp file, behind."""
    path = tmp_path / "answers-x.json"
    store_entry(path, "answers", "x", ["old"])

    def boom(*_args, **_kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(OSError):
        store_entry(path, "answers", "x", ["new"])
    assert load_entry(path, "answers", "x", _same) == ["old"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["answers-x.json"]


@pytest.mark.parametrize("suffix", [".json", ".safetensors"])
def test_entry_copied_over_another_keys_file_is_discarded(tmp_path, capsys, suffix):
    """`cp answers-A.json answers-B.json` must not hand A's answers to B's stage."""
    payload = ["steered"] if suffix == ".json" else {"scores": torch.ones(2)}
    a, b = tmp_path / f"e-aaaa{suffix}", tmp_path / f"e-x{suffix}"
    store_entry(a, KINDS[suffix], "aaaa", payload)
    b.write_bytes(a.read_bytes())
    assert "written for key aaaa, not x" in _damaged(b, capsys)
    assert load_entry(a, KINDS[suffix], "aaaa", _same) is not None


def test_entry_that_is_a_folder_is_discarded(tmp_path, capsys):
    path = tmp_path / "answers-x.json"
    (path / "inside").mkdir(parents=True)
    assert "not a regular file" in _damaged(path, capsys)


def test_dangling_link_is_discarded(tmp_path, capsys):
    path = tmp_path / "answers-x.json"
    path.symlink_to(tmp_path / "gone.json")
    _damaged(path, capsys)
