"""Fixtures for the command tests: one tiny model folder, one cache and one cold export.

They are session-scoped so the export, score, eval and sweep tests in this folder's modules
share one cold export and its warm cache, as they did when they were one module.
"""

from __future__ import annotations

import pytest
from export_helpers import N_TRAIN, _export
from tiny import save_tiny_model_dir

# monkeypatch target: the judge factory the run calls
MAKE_JUDGE = "gcm_edit.commands.run.make_judge"


class ContrastSideJudge:
    """Concept present exactly in the contrast answers.

    A random model never writes verse, so the real judge would drop every pair. `build_pairs`
    judges all original answers first, then all contrast answers (pairs/contrastive.py), so the
    answers after the first n are the contrast side.
    """

    label = "calls"

    def __init__(self, n_questions: int):
        self.n_questions = n_questions
        self.calls = 0

    def __call__(self, text: str) -> bool:
        self.calls += 1
        return self.calls > self.n_questions

    def grade(self, text: str) -> float:
        return 0.0


def _use_contrast_side_judge(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(MAKE_JUDGE, lambda *_args: ContrastSideJudge(N_TRAIN))


@pytest.fixture(scope="session")
def run_env(tmp_path_factory):
    """One tiny model folder and one cache shared by this folder's exports (warm re-runs)."""
    root = tmp_path_factory.mktemp("export-tiny")
    model_dir = save_tiny_model_dir(root / "tiny-llama")
    return {"root": root, "model": model_dir, "cache": root / "cache"}


@pytest.fixture
def env(run_env, exported, monkeypatch):
    """The shared model and cache, warmed by the cold export.

    In the one module these tests came from, the cold export always ran before the tests
    using `env`; depending on `exported` keeps that true whatever file or test runs first.
    """
    monkeypatch.setenv("GCM_EDIT_CACHE", str(run_env["cache"]))
    _use_contrast_side_judge(monkeypatch)
    return run_env


@pytest.fixture(scope="session")
def exported(run_env):
    """The first (cold) export into OUT: every test using `env` runs after it (see `env`)."""
    out = run_env["root"] / "out"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GCM_EDIT_CACHE", str(run_env["cache"]))
        _use_contrast_side_judge(mp)
        result = _export(run_env["model"], out)
    assert result.exit_code == 0, (result.output, result.exception)
    return out, result
