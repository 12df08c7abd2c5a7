"""The run cache under an export: damaged entries are discarded and recomputed, every stage up
to verification is cached (an interrupted export resumes), and overshooting α is flagged."""

from __future__ import annotations

import json
import shutil

import pytest
from export_helpers import _export

RUN_STAGES = "gcm_edit.commands.run"


@pytest.fixture
def private_cache(env, tmp_path, monkeypatch):
    """A copy of the warm shared cache that a test may damage."""
    cache = shutil.copytree(env["cache"], tmp_path / "cache")
    monkeypatch.setenv("GCM_EDIT_CACHE", str(cache))
    return cache


def entries(cache, pattern: str) -> list:
    found = sorted(cache.rglob(pattern))
    assert found, f"no {pattern} in the cache"
    return found


def discarded(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("cache: discarded")]


def test_damaged_entries_are_recomputed(env, private_cache, tmp_path):
    """Garbled pairs JSON and truncated scores: one line each, recomputed, exit 0."""
    for path in entries(private_cache, "pairs-*.json"):
        path.write_text('{"kind": "pairs", "data": [')
    for path in entries(private_cache, "scores-*.safetensors"):
        path.write_bytes(path.read_bytes()[:-40])
    result = _export(env["model"], tmp_path / "out")
    assert result.exit_code == 0, (result.output, result.exception)
    lines = discarded(result.output)
    assert any("pairs-" in line for line in lines), result.output
    assert any("scores-" in line for line in lines), result.output
    assert "✓ contrastive pairs (" in result.output and "(cached)" not in next(
        line for line in result.output.splitlines() if "contrastive pairs" in line
    )
    again = _export(env["model"], tmp_path / "again")  # the recomputed entries are good
    assert again.exit_code == 0 and discarded(again.output) == [], again.output


def test_tampered_answers_fail_their_checksum(env, private_cache, tmp_path):
    """An edited cached answer is not trusted: its checksum no longer matches."""
    for path in entries(private_cache, "answers-*.json"):
        data = json.loads(path.read_text())
        data["data"][0] = "an answer nobody generated"
        path.write_text(json.dumps(data))
    result = _export(env["model"], tmp_path / "out")
    assert result.exit_code == 0, (result.output, result.exception)
    assert discarded(result.output) and all("checksum" in x for x in discarded(result.output))
    manifest = json.loads((tmp_path / "out" / "gcm_edit.json").read_text())
    assert all("nobody" not in s["base"] + s["steered"] for s in manifest["samples"])


def test_a_rerun_redoes_no_stage_but_bake(env, private_cache, tmp_path, monkeypatch):
    """Answers, judging, retention and verification all come from the cache on a re-run."""

    def must_not_run(*_args, **_kwargs):
        raise AssertionError("this stage should have come from the cache")

    first = _export(env["model"], tmp_path / "first")
    assert first.exit_code == 0, (first.output, first.exception)
    for name in ("answer_questions", "measure_answers", "measure_retention"):
        monkeypatch.setattr(f"{RUN_STAGES}.{name}", must_not_run)
    monkeypatch.setattr("gcm_edit.commands.steering_run.build_pairs", must_not_run)
    monkeypatch.setattr("gcm_edit.commands.export_write.verify_export", must_not_run)
    second = _export(env["model"], tmp_path / "second")
    assert second.exit_code == 0, (second.output, second.exception)
    assert "✓ verify (cached)" in second.output
    first_manifest = json.loads((tmp_path / "first" / "gcm_edit.json").read_text())
    second_manifest = json.loads((tmp_path / "second" / "gcm_edit.json").read_text())
    for section in ("metrics", "retention", "verification", "files", "steering"):
        assert first_manifest[section] == second_manifest[section], section


def test_overshooting_alpha_is_flagged(env, tmp_path):
    """α·δ many times a head's own output norm gets a warning naming the ratio; the manifest
    records each head's push."""
    result = _export(env["model"], tmp_path / "out", "--alpha", "100")
    assert result.exit_code == 0, (result.output, result.exception)
    warnings = [line for line in result.output.splitlines() if line.startswith("warning: α·δ")]
    assert len(warnings) == 1 and "× the typical output norm of head" in warnings[0]
    heads = json.loads((tmp_path / "out" / "gcm_edit.json").read_text())["steering"]["heads"]
    assert max(h["push"] for h in heads) > 10
    calm = _export(env["model"], tmp_path / "calm", "--alpha", "0.1")
    assert calm.exit_code == 0 and "warning: α·δ" not in calm.output
