"""`gcm-edit eval` on the tiny base model and on its steered export."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from gcm_edit.checkpoint.reports import EvalReport
from gcm_edit.cli.app import app


def test_eval_command_unsteered_and_steered(exported, env, tmp_path):
    """`gcm-edit eval`: KL is 0 for the base itself and positive for the steered export."""
    common = ["--n-questions", "2", "--max-new-tokens", "8", "--batch-size", "3"]
    base = CliRunner().invoke(
        app, ["eval", str(env["model"]), *common, "--out", str(tmp_path / "base.json")]
    )
    assert base.exit_code == 0, (base.output, base.exception)
    base_report = json.loads((tmp_path / "base.json").read_text())
    assert base_report["retention"]["kl"] == 0.0
    assert set(base_report["metrics"]) == {"evaluated", "prompted"}  # + prompting reference
    capability = base_report["capability"]
    assert capability["base"] == capability["steered"] and capability["lost"] == 0

    out = exported[0]
    steered = CliRunner().invoke(
        app,
        ["eval", str(out), *common, "--base", str(env["model"]), "--out", str(tmp_path / "s.json")],
    )
    assert steered.exit_code == 0, (steered.output, steered.exception)
    report = json.loads((tmp_path / "s.json").read_text())
    assert EvalReport.model_validate(report).metrics["evaluated"].n == 2
    assert report["retention"]["kl"] > 0
    assert set(report["metrics"]) == {"evaluated", "reference", "prompted"}
    assert len(report["answers"]) == 2 and "Retention" in steered.output
    manifest = json.loads((out / "gcm_edit.json").read_text())
    # the steered answers are the export's own held-out answers: plain model == hooked model
    assert [a["answer"] for a in report["answers"]] == [
        s["steered"] for s in manifest["samples"][:2]
    ]


def test_eval_in_llamacpp_needs_a_gguf(exported):
    result = CliRunner().invoke(app, ["eval", str(exported[0]), "--runtime", "llama.cpp"])
    assert result.exit_code == 2
    assert "evaluates MODEL/model.gguf" in result.output


def test_eval_names_the_judge(env, tmp_path):
    """The report names what judged: the recipe's rule, or the LLM given on the command line."""
    common = ["eval", str(env["model"]), "--n-questions", "2", "--max-new-tokens", "8"]
    url = "http://127.0.0.1:9/v1"  # never called: the tests' judge stands in (conftest.py)
    result = CliRunner().invoke(app, [*common, "--judge-url", url, "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, (result.output, result.exception)
    question = json.loads((tmp_path / "r").read_text())["judge"]
    assert question.startswith(f'an LLM (judge at {url}) asked "Does this answer show')


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (None, "does not exist: give the path of a .gguf file"),
        (b"not a model", "is not a GGUF file (no GGUF header)"),
    ],
)
def test_judge_model_alone_must_be_a_gguf(env, tmp_path, content, why):
    """Without --judge-url, --judge-model is a local GGUF: anything else stops in one line,
    before a model is loaded."""
    path = tmp_path / "judge.gguf"
    if content is not None:
        path.write_bytes(content)
    result = CliRunner().invoke(app, ["eval", str(env["model"]), "--judge-model", str(path)])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [f"error: --judge-model {path} {why}"]
