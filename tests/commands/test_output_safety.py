"""--out through the commands: refused before any model loads when it cannot or must not be
written, replaced over a file with --force, locked against a second export, and a killed
export's staging folder removed (and reported) by the next run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from export_helpers import _args, _export, _leftovers
from tiny import unwritable_folder
from typer.testing import CliRunner

from gcm_edit.cli.app import app

# monkeypatch target: what writes the staging folder (verification may come from the cache)
WRITE_CHECKPOINT = "gcm_edit.commands.export_write.write_checkpoint"
CLI = [sys.executable, "-m", "gcm_edit.cli.app"]
# An export that stalls once its staging folder is written: it signals that (touching
# argv[1]) and waits to be killed.
STALLED_EXPORT = """
import sys, time
from pathlib import Path
import gcm_edit.commands.export_write as export_write
from gcm_edit.cli.app import app

write = export_write.write_checkpoint

def write_and_stall(*args, **kwargs):
    write(*args, **kwargs)
    Path(sys.argv[1]).touch()
    time.sleep(600)

export_write.write_checkpoint = write_and_stall
app(sys.argv[2:], prog_name="gcm-edit")
"""


def _no_model_loading(*_args, **_kwargs):
    raise AssertionError("the model was loaded before --out was refused")


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


@pytest.mark.parametrize("command", ["export", "score", "sweep"])
@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("below a file", "is a file, not a folder"),
        ("/proc", "cannot write in /proc"),
        ("unwritable parent", "cannot write in"),
        ("model folder", "is the model's folder"),
        ("inside the model folder", "is inside the model's folder"),
        ("cache", "is inside the gcm-edit cache"),
    ],
)
def test_bad_out_is_refused_before_any_model_loads(
    tiny_model_dir, tmp_path, isolated_cache, monkeypatch, command, where, message
):
    monkeypatch.setattr("gcm_edit.commands.run.load_model", _no_model_loading)
    (tmp_path / "file").write_text("x")
    out = {
        "below a file": tmp_path / "file" / "out",
        "/proc": Path("/proc/gcm-edit-out"),
        "unwritable parent": unwritable_folder(tmp_path) / "out",
        "model folder": tiny_model_dir,
        "inside the model folder": tiny_model_dir / "out",
        "cache": isolated_cache / "out",
    }[where]
    args = [command, "--model", str(tiny_model_dir), "--out", str(out), "--force"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, (result.output, result.exception)
    (line,) = _error_lines(result.stderr)
    assert line.startswith("error: --out") and message in line, line
    assert (tiny_model_dir / "config.json").is_file()


@pytest.mark.parametrize("command", ["calibrate", "eval"])
def test_report_file_below_a_file_is_refused_before_any_model_loads(
    tiny_model_dir, tmp_path, monkeypatch, command
):
    """calibrate and eval write one file when they end: its folder is checked first."""
    monkeypatch.setattr("gcm_edit.commands.run.load_model", _no_model_loading)
    (tmp_path / "file").write_text("x")
    target = [str(tiny_model_dir)] if command == "eval" else ["--model", str(tiny_model_dir)]
    result = CliRunner().invoke(app, [command, *target, "--out", str(tmp_path / "file" / "r")])
    assert result.exit_code == 2, (result.output, result.exception)
    (line,) = _error_lines(result.stderr)
    assert "is a file, not a folder" in line


def test_force_replaces_a_file_with_the_export(env, tmp_path):
    out = tmp_path / "out"
    out.write_text("not an export")
    refused = _export(env["model"], out)
    assert refused.exit_code == 2 and "already exists" in refused.stderr
    assert out.read_text() == "not an export"

    result = _export(env["model"], out, "--force")
    assert result.exit_code == 0, (result.output, result.exception)
    assert (out / "model.safetensors").is_file() and (out / "gcm_edit.json").is_file()
    assert _leftovers(out) == []


def test_second_export_to_the_same_out_fails_at_once(env, tmp_path, monkeypatch):
    """While this process's export writes OUT, another process exports to the same OUT: it
    stops at once (exit 2, one line naming this process); this export still succeeds."""
    import gcm_edit.commands.export_write as export_write

    out = tmp_path / "out"
    write = export_write.write_checkpoint
    second = []

    def write_while_another_export_starts(*args, **kwargs):
        command = [*CLI, *_args(env["model"], out)]
        second.append(subprocess.run(command, capture_output=True, text=True, timeout=120))
        write(*args, **kwargs)

    monkeypatch.setattr(WRITE_CHECKPOINT, write_while_another_export_starts)
    first = _export(env["model"], out)
    assert first.exit_code == 0, (first.output, first.exception)
    (result,) = second
    assert result.returncode == 2, (result.stdout, result.stderr)
    (line,) = _error_lines(result.stderr)  # no stage ran: nothing but the error
    assert f"is being written by another gcm-edit run (pid {os.getpid()})" in line
    assert (out / "model.safetensors").is_file()
    assert _leftovers(out) == []


def test_killed_exports_staging_is_removed_by_the_next_run(env, tmp_path):
    """kill -9 once the staging folder is written leaves .OUT.partial-PID-*; the next export
    removes it, says so in one line, and writes OUT."""
    out, ready = tmp_path / "out", tmp_path / "verifying"
    with open(tmp_path / "stalled.log", "w") as log:
        stalled = subprocess.Popen(
            [sys.executable, "-c", STALLED_EXPORT, str(ready), *_args(env["model"], out)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 120
    while not ready.exists():
        assert stalled.poll() is None, (tmp_path / "stalled.log").read_text()
        assert time.monotonic() < deadline, "the export never wrote its staging folder"
        time.sleep(0.1)
    os.kill(stalled.pid, signal.SIGKILL)
    stalled.wait()
    (partial,) = [name for name in _leftovers(out) if name.startswith(".out.partial-")]
    assert partial.startswith(f".out.partial-{stalled.pid}-")
    assert (tmp_path / partial / "model.safetensors").is_file()

    result = _export(env["model"], out)
    assert result.exit_code == 0, (result.output, result.exception)
    (note,) = [line for line in result.stderr.splitlines() if partial in line]
    assert "removed" in note and "interrupted" in note
    assert (out / "model.safetensors").is_file()
    assert _leftovers(out) == []
