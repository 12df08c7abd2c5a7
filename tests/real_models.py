"""Plain helpers for the integration tests on real models (test_integration, test_gemma)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from gcm_edit.cli.app import app


def eval_plain_export(folder: Path, report: Path, max_new_tokens: int, n_questions: int) -> dict:
    """`gcm-edit eval` on an export's held-out questions, as a plain folder (no hooks): its
    answers must be the hooked model's, i.e. the manifest's samples. `n_questions` is the
    export's own: the same questions in the same batch (left padding changes the numerics)."""
    evaluated = CliRunner().invoke(
        app,
        ["eval", str(folder), "--n-questions", str(n_questions)]
        + ["--max-new-tokens", str(max_new_tokens), "--out", str(report)],
    )
    assert evaluated.exit_code == 0, (evaluated.output, evaluated.exception)
    result = json.loads(report.read_text())
    samples = json.loads((folder / "gcm_edit.json").read_text())["samples"]
    answers = [a["answer"] for a in result["answers"]][: len(samples)]
    assert answers == [s["steered"] for s in samples]
    return result
