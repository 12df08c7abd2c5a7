"""The cache folder: a GCM_EDIT_CACHE (or XDG_CACHE_HOME) naming a file fails in one line
before any work, not with NotADirectoryError when the first stage stores its result."""

from __future__ import annotations

import time

import pytest

from gcm_edit.cache import cache_root
from gcm_edit.errors import GcmEditError


def _blocked(tmp_path, how: str):
    """A cache path that cannot be a folder: a file, below a file, or a dead link."""
    target = tmp_path / "f"
    if how == "link":
        target.symlink_to(tmp_path / "gone")
        return target, target
    target.write_text("not a folder")
    return (target, target) if how == "file" else (target / "cache", target)


@pytest.mark.parametrize("how", ["file", "below a file", "link"])
def test_cache_naming_a_file_is_one_line(tmp_path, monkeypatch, how):
    root, blocking = _blocked(tmp_path, how)
    monkeypatch.setenv("GCM_EDIT_CACHE", str(root))
    with pytest.raises(GcmEditError) as info:
        cache_root()
    message = str(info.value)
    assert message.startswith(f"GCM_EDIT_CACHE {root}: {blocking} is not a folder")
    assert "\n" not in message


def test_xdg_cache_naming_a_file_is_one_line(tmp_path, monkeypatch):
    monkeypatch.delenv("GCM_EDIT_CACHE")
    (tmp_path / "xdg").write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    with pytest.raises(GcmEditError, match="XDG_CACHE_HOME .* is not a folder"):
        cache_root()


def test_cache_folder_that_does_not_exist_yet_is_fine(tmp_path, monkeypatch):
    monkeypatch.setenv("GCM_EDIT_CACHE", str(tmp_path / "new" / "cache"))
    assert cache_root() == tmp_path / "new" / "cache"


def test_default_model_fails_before_its_conversion(tmp_path, monkeypatch):
    """The probe's 59 s: the built-in model was converted before the cache was written."""
    from gcm_edit.inputs import default_model
    from gcm_edit.inputs.loading import resolve_model

    def convert(*_args):
        raise AssertionError("converted although the cache is unusable")

    monkeypatch.setattr(default_model, "convert_gguf", convert)
    monkeypatch.setenv("GCM_EDIT_CACHE", str(_blocked(tmp_path, "file")[0]))
    with pytest.raises(GcmEditError, match="is not a folder"):
        resolve_model(default_model.DEFAULT_MODEL)


def test_cli_fails_in_one_line_before_any_work(tmp_path, monkeypatch, tiny_model_dir):
    """`gcm-edit export` with GCM_EDIT_CACHE naming a file: exit 2, one line, at once."""
    from typer.testing import CliRunner

    from gcm_edit.cli.app import app

    monkeypatch.setenv("GCM_EDIT_CACHE", str(_blocked(tmp_path, "file")[0]))
    start = time.perf_counter()
    args = ["export", "--model", str(tiny_model_dir), "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: GCM_EDIT_CACHE"), result.stderr
    assert "is not a folder" in lines[0]
    assert time.perf_counter() - start < 30
    assert not (tmp_path / "out").exists()
