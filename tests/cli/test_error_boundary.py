"""One error boundary: whatever fails, the CLI prints one `error:` line and exits 2 (bad
input), 1 (internal error) or 130 (interrupted); --debug or GCM_EDIT_DEBUG=1 adds the
traceback."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from gcm_edit.cli.app import app
from gcm_edit.errors import GcmEditError

# monkeypatch target: what `gcm-edit recipes show` calls (imported when the command runs)
LOAD_RECIPE = "gcm_edit.inputs.recipe_files.load_recipe"
HINT = "(run with --debug or GCM_EDIT_DEBUG=1 for the traceback)"


def _invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def _one_error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


def _raising(error: BaseException):
    def fail(*_args, **_kwargs):
        raise error

    return fail


@pytest.fixture(autouse=True)
def no_debug_env(monkeypatch):
    monkeypatch.delenv("GCM_EDIT_DEBUG", raising=False)


def test_internal_error_is_one_line_exit_1(monkeypatch):
    monkeypatch.setattr(LOAD_RECIPE, _raising(ValueError("boom\nmore detail")))
    result = _invoke("recipes", "show", "verse")
    assert result.exit_code == 1, result.output
    assert _one_error_line(result) == f"error: internal error: ValueError: boom {HINT}"


@pytest.mark.parametrize("how", ["--debug", "GCM_EDIT_DEBUG=1"])
def test_debug_shows_the_traceback(monkeypatch, how):
    monkeypatch.setattr(LOAD_RECIPE, _raising(ValueError("boom")))
    if how == "--debug":
        result = _invoke("--debug", "recipes", "show", "verse")
    else:
        monkeypatch.setenv("GCM_EDIT_DEBUG", "1")
        result = _invoke("recipes", "show", "verse")
    assert result.exit_code == 1, result.output
    assert "Traceback (most recent call last)" in result.stderr
    assert "raise error" in result.stderr
    assert result.stderr.rstrip().endswith("error: internal error: ValueError: boom")


def test_debug_is_per_invocation(monkeypatch):
    """--debug on one call does not leak into the next (tests run many calls in a process)."""
    monkeypatch.setattr(LOAD_RECIPE, _raising(ValueError("boom")))
    _invoke("--debug", "recipes", "show", "verse")
    assert "Traceback" not in _invoke("recipes", "show", "verse").stderr


def test_interrupt_is_one_line_exit_130(monkeypatch):
    monkeypatch.setattr(LOAD_RECIPE, _raising(KeyboardInterrupt()))
    result = _invoke("recipes", "show", "verse")
    assert result.exit_code == 130, result.output
    assert _one_error_line(result) == "error: interrupted"


def test_user_error_spanning_lines_is_one_line_exit_2(monkeypatch):
    monkeypatch.setattr(LOAD_RECIPE, _raising(GcmEditError("bad recipe\n  see line 3")))
    result = _invoke("recipes", "show", "verse")
    assert result.exit_code == 2, result.output
    assert _one_error_line(result) == "error: bad recipe see line 3"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["export", "--no-such-option"], "No such option: --no-such-option"),
        (["export", "--batch-size", ""], "--batch-size"),
        (["eval"], "Missing argument 'MODEL'"),
        (["no-such-command"], "No such command 'no-such-command'"),
    ],
)
def test_usage_errors_are_one_line_exit_2(args, message):
    """Click's own errors too: no usage block, no box, just the line."""
    result = _invoke(*args)
    assert result.exit_code == 2, result.output
    assert message in _one_error_line(result)


def test_no_arguments_prints_the_help():
    result = _invoke()
    assert result.exit_code == 0, result.output
    assert "export" in result.stdout and "--debug" in result.stdout


def test_binary_recipe_is_one_line_exit_2(tmp_path):
    recipe = tmp_path / "binary.yaml"
    recipe.write_bytes(b"name: x\n\xff\xfe\x00\x81 garbage")
    result = _invoke("recipes", "show", str(recipe))
    assert result.exit_code == 2, result.output
    line = _one_error_line(result)
    assert str(recipe) in line and "not UTF-8" in line


def test_garbled_weights_are_one_line_exit_2(tiny_model_dir, tmp_path):
    """A truncated model.safetensors: one line naming the file, not a SafetensorError."""
    weights = tiny_model_dir / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    result = _invoke("export", "--model", str(tiny_model_dir), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2, (result.output, result.exception)
    line = _one_error_line(result)
    assert f"unreadable weights in {weights}" in line
    assert not (tmp_path / "out").exists()


def test_bogus_device_is_one_line_exit_2_before_any_model_loads(tiny_model_dir, monkeypatch):
    monkeypatch.setattr("gcm_edit.commands.run.load_model", _raising(AssertionError("loaded")))
    result = _invoke("export", "--model", str(tiny_model_dir), "--accelerator", "bogus")
    assert result.exit_code == 2, (result.output, result.exception)
    assert "--accelerator 'bogus' is not a device" in _one_error_line(result)
