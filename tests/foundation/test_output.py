"""Output folders: checked before any work, locked against a second writer, written whole or
not at all, and a killed run's leftovers recognised by their pid and removed by the next run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from tiny import unwritable_folder

from gcm_edit.errors import GcmEditError
from gcm_edit.output import check_output, check_output_file, release_outputs, staged_folder


@pytest.fixture(autouse=True)
def released():
    """A test that fails between check and install must not leave its lock to the next one."""
    yield
    release_outputs()


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def siblings(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.glob(f".{out.name}.*"))


@pytest.mark.parametrize("where", ["below a file", "/proc", "/sys", "unwritable parent"])
def test_unwritable_out_is_refused(tmp_path, where):
    """Each is one GcmEditError at check time, not a crash after the whole pipeline."""
    (tmp_path / "file").write_text("x")
    out = {
        "below a file": tmp_path / "file" / "sub" / "out",
        "/proc": Path("/proc/gcm-edit-out"),
        "/sys": Path("/sys/gcm-edit-out"),
        "unwritable parent": unwritable_folder(tmp_path) / "out",
    }[where]
    with pytest.raises(GcmEditError, match="--out"):
        check_output(out, force=True)
    with pytest.raises(GcmEditError, match="--out"):
        check_output_file(out)


def test_guarded_folders_are_refused(tmp_path, isolated_cache, monkeypatch):
    """Not the model's folder (nor in it, nor above it), the cache, the current folder."""
    model = tmp_path / "models" / "tiny"
    model.mkdir(parents=True)
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    cases = {
        model: "is the model's folder",
        model / "out": "is inside the model's folder",
        model.parent: "holds the model's folder",
        isolated_cache: "is the gcm-edit cache",
        isolated_cache / "runs" / "out": "is inside the gcm-edit cache",
        Path("."): "is the current folder",
    }
    for out, message in cases.items():
        with pytest.raises(GcmEditError, match=message):
            check_output(out, force=True, inputs=[("the model's folder", model)])
    with pytest.raises(GcmEditError, match="is inside the model's folder"):
        check_output_file(model / "calibration.csv", [("the model's folder", model)])
    assert check_output(tmp_path / "elsewhere", force=False, inputs=[("the model's folder", model)])


def test_force_replaces_a_regular_file(tmp_path):
    """--force over a file: the file becomes the folder, and nothing is left beside it."""
    out = tmp_path / "out"
    out.write_text("an old file")
    with pytest.raises(GcmEditError, match="already exists"):
        check_output(out, force=False)
    check_output(out, force=True)
    with staged_folder(out) as staging:
        (staging / "a.txt").write_text("new")
    assert out.is_dir() and (out / "a.txt").read_text() == "new"
    assert siblings(out) == []


def test_staging_is_named_after_the_run_and_cleared_on_failure(tmp_path):
    out = tmp_path / "out"
    check_output(out, force=False)
    with pytest.raises(RuntimeError), staged_folder(out) as staging:
        assert staging.name.startswith(f".out.partial-{os.getpid()}-")
        assert siblings(out) == [".out.lock", staging.name]
        raise RuntimeError("boom")
    assert not out.exists()
    assert siblings(out) == []  # staging removed, lock released and removed


def test_second_writer_fails_at_once_naming_the_first(tmp_path):
    """Another process holding OUT: a one-line error with its pid; free once it is done."""
    out = tmp_path / "out"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; from gcm_edit.output import check_output; "
            "check_output(Path(sys.argv[1]), False); print('locked', flush=True); sys.stdin.read()",
            str(out),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(GcmEditError, match=f"another gcm-edit run \\(pid {holder.pid}\\)"):
            check_output(out, force=False)
    finally:
        holder.communicate("")
    assert holder.returncode == 0
    assert siblings(out) == []  # the holder removed its lock file when it exited
    check_output(out, force=False)


def test_dead_runs_leftovers_are_removed_live_ones_kept(tmp_path, capsys):
    out = tmp_path / "out"
    dead = dead_pid()
    (tmp_path / f".out.partial-{dead}-abcd1234").mkdir()
    (tmp_path / f".out.partial-{dead}-abcd1234" / "model.safetensors").write_bytes(b"x" * 100)
    (tmp_path / f".out.old-{dead}-efgh5678").write_text("a replaced file")
    live = tmp_path / f".out.partial-{os.getpid()}-ijkl9012"
    live.mkdir()
    other = tmp_path / ".other.partial-1-mnop3456"  # another output's: not ours to judge
    other.mkdir()
    check_output(out, force=False)
    assert siblings(out) == [".out.lock", live.name]
    assert other.is_dir()
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert f".out.partial-{dead}-abcd1234" in lines[0] and f".out.old-{dead}-efgh5678" in lines[0]
    assert "interrupted" in lines[0]


def test_input_files_and_the_folders_holding_them_are_refused(tmp_path):
    """A .gguf model or a recipe file: --out may not be it nor hold it (--force would delete
    it), though it may sit beside it."""
    gguf = tmp_path / "models" / "m.gguf"
    recipe = tmp_path / "recipes" / "r.yaml"
    for path in (gguf, recipe):
        path.parent.mkdir()
        path.write_text("x")
    inputs = [("the model file", gguf), ("the recipe's file", recipe)]
    cases = {
        gguf: "is the model file",
        gguf.parent: "holds the model file",
        tmp_path: "holds the model file",
        recipe: "is the recipe's file",
        recipe.parent: "holds the recipe's file",
    }
    for out, message in cases.items():
        with pytest.raises(GcmEditError, match=message):
            check_output(out, force=True, inputs=inputs)
        with pytest.raises(GcmEditError, match=message):
            check_output_file(out, inputs)
    assert check_output(gguf.parent / "out", force=True, inputs=inputs)


def test_folders_made_for_an_output_never_written_are_removed(tmp_path):
    """An interrupted or failed run leaves no empty parents of its --out behind."""
    out = tmp_path / "a" / "b" / "out"
    check_output(out, force=False)
    assert (tmp_path / "a" / "b").is_dir()
    release_outputs()
    assert list(tmp_path.iterdir()) == []
    check_output_file(tmp_path / "c" / "report.json")
    release_outputs()
    assert list(tmp_path.iterdir()) == []
    check_output(out, force=False)
    with staged_folder(out) as staging:
        (staging / "x.txt").write_text("kept")
    release_outputs()
    assert (out / "x.txt").read_text() == "kept"
