"""Plain helpers for the integration tests on real models (test_integration, test_gemma)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from gcm_edit.cli.app import app
from gcm_edit.inputs.default_model import DEFAULT_MODEL
from gcm_edit.inputs.loading import load_model, load_tokenizer, resolve_model
from gcm_edit.model.heads import HeadGeometry
from gcm_edit.steering.plan import SteeringPlan

QUESTIONS = ["Why is the sky blue?", "What do bees make?", "How do trains work?"]


def default_model(cache: Path):
    """The default model and its tokenizer, converted once into the integration cache."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GCM_EDIT_CACHE", str(cache))
        ref = resolve_model(DEFAULT_MODEL)
        return load_model(ref), load_tokenizer(ref)


def fixed_plan(model) -> SteeringPlan:
    """4 additive heads of the default model, seeded δ at α = 2: strong enough that its greedy
    text differs from the base model's, so a runtime that lost the steering is caught."""
    geometry = HeadGeometry.of(model.config)
    heads = [(10, 1), (15, 3), (16, 6), (21, 3)]
    g = torch.Generator().manual_seed(0)
    vectors = torch.randn(len(heads), geometry.head_dim, generator=g) * 3
    return SteeringPlan(geometry, heads, vectors, 2.0, [1.0] * len(heads))


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
