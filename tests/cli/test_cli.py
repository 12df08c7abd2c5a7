"""CLI error paths: every user mistake is exit code 2 and one line, before any heavy work."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from gcm_edit.cli.app import app
from gcm_edit.commands.settings import ALPHA_GRID


def _no_heavy_work(*_args, **_kwargs):
    raise AssertionError("the model weights were loaded before the input was rejected")


@pytest.fixture(autouse=True)
def forbid_model_loading(monkeypatch):
    """These are all cheap checks: loading weights (or converting the default model) is a bug."""
    monkeypatch.setattr("gcm_edit.commands.run.load_model", _no_heavy_work)
    monkeypatch.setattr("gcm_edit.inputs.loading.default_model_dir", _no_heavy_work)


def _invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def _single_error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.parametrize("command", ["export", "calibrate", "score", "sweep", "eval"])
def test_unknown_concept(command):
    """A typo in --concept is exit 2 with the list of known concepts."""
    target = ["smollm2-135m-instruct"] if command == "eval" else []
    result = _invoke(command, *target, "--concept", "no-such-concept")
    assert result.exit_code == 2, result.output
    line = _single_error_line(result)
    assert "no-such-concept" in line
    assert "known concepts: refusal, sycophancy, verse" in line


def test_model_folder_not_found(tmp_path):
    """A path that does not exist is not silently treated as a hub id."""
    result = _invoke("export", "--model", "/nonexistent/path", "--out", str(tmp_path / "o"))
    assert result.exit_code == 2, result.output
    assert "model folder not found" in _single_error_line(result)


def test_folder_without_config(tmp_path):
    """An existing folder that is not an HF model folder is named as such."""
    (tmp_path / "empty").mkdir()
    result = _invoke("export", "--model", str(tmp_path / "empty"), "--out", str(tmp_path / "o"))
    assert result.exit_code == 2, result.output
    assert "no config.json" in _single_error_line(result)


def test_unsupported_architecture(tmp_path):
    """A GPT-2 folder is rejected from its config alone, naming the supported families."""
    from transformers import GPT2Config, GPT2LMHeadModel

    folder = tmp_path / "gpt2"
    GPT2LMHeadModel(GPT2Config(n_layer=1, n_head=2, n_embd=8, vocab_size=32)).save_pretrained(
        folder
    )
    result = _invoke("export", "--model", str(folder), "--out", str(tmp_path / "o"))
    assert result.exit_code == 2, result.output
    line = _single_error_line(result)
    assert "'gpt2'" in line
    assert "supported:" in line and "llama" in line
    assert not (tmp_path / "o").exists()


def test_existing_out_without_force(tiny_model_dir, tmp_path):
    """An existing output folder is never overwritten without --force, and stays untouched."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = _invoke("export", "--model", str(tiny_model_dir), "--out", str(out))
    assert result.exit_code == 2, result.output
    line = _single_error_line(result)
    assert "already exists" in line and "--force" in line
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    assert (out / "keep.txt").read_text() == "mine"
    assert not list(tmp_path.glob(".out.partial-*"))


@pytest.mark.parametrize(
    "args",
    [("--k", "0"), ("--k", "150"), ("--alpha", "0"), ("--batch-size", "0"), ("--n-train", "0")],
)
def test_bad_numbers(args):
    """Out-of-range numbers are exit 2 with one line, before anything runs."""
    result = _invoke("export", *args)
    assert result.exit_code == 2, result.output
    _single_error_line(result)


@pytest.mark.parametrize(
    ("args", "flag"), [(("--k", "0"), "--k"), (("--batch-size", "0"), "--batch-size")]
)
def test_bad_number_error_names_the_flag_typed(args, flag):
    """The error must name the option the user typed (not an internal field like k_percent)."""
    result = _invoke("export", *args)
    assert result.exit_code == 2, result.output
    line = _single_error_line(result)
    assert re.search(rf"{re.escape(flag)}(?![\w-])", line), line


def test_bad_positions():
    """--positions is checked against prompt|response|all."""
    result = _invoke("export", "--positions", "middle")
    assert result.exit_code == 2, result.output
    assert "positions" in _single_error_line(result)


def test_help_lists_commands():
    result = _invoke("--help")
    assert result.exit_code == 0
    assert "export" in result.output and "calibrate" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["export", "--method", "magic"], "--method: Input should be 'attribution'"),
        (["export", "--alpha", "strong"], "--alpha"),
        (["export", "--k", "0"], "--k"),
        (["score", "--strategy", "horovod"], "--strategy"),
        (["sweep", "--methods", "attribution,magic"], "--methods"),
        (["sweep", "--ks", "5,x"], "--ks"),
        (["eval", "smollm2-135m-instruct", "--split", "train"], "--split"),
    ],
)
def test_bad_option_values(args, message):
    """Scoring, sweep and eval options are validated into one line, before any model loads."""
    result = _invoke(*args)
    assert result.exit_code == 2, result.output
    assert message in _single_error_line(result)


def test_push_without_token_fails_before_any_work(tmp_path, monkeypatch):
    """No token: one line with the `hf upload` command, and no model is loaded."""
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr("huggingface_hub.constants.HF_TOKEN_PATH", str(tmp_path / "hf" / "token"))
    out = tmp_path / "o"
    result = _invoke("export", "--push-to-hub", "me/verse", "--out", str(out))
    assert result.exit_code == 2, result.output
    line = _single_error_line(result)
    assert "needs a Hugging Face token" in line and "hf upload me/verse FOLDER" in line
    assert not out.exists()


def test_list_options_repeat_or_comma_separate(monkeypatch):
    """`--ks 2,5 --ks 10` is the list [2, 5, 10]: a repeated list option adds to it, never
    silently keeps only its last value."""
    seen = []
    monkeypatch.setattr("gcm_edit.commands.sweep.sweep", seen.append)
    args = ["sweep", "--ks", "2,5", "--ks", "10", "--rankings", "effect"]
    result = _invoke(*args, "--rankings", "effect-per-kl", "--interventions", "rank1")
    assert result.exit_code == 0, result.output
    (settings,) = seen
    assert settings.ks == [2.0, 5.0, 10.0]
    assert settings.rankings == ["effect", "effect-per-kl"]
    assert settings.interventions == ["rank1"]
    assert settings.alphas == ALPHA_GRID  # the default, untouched
