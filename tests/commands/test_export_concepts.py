"""`gcm-edit export --concept`: the other built-in recipes end to end, and composed concepts."""

from __future__ import annotations

import json

import pytest
from export_helpers import K_PERCENT, N_TRAIN, _export

from gcm_edit.inputs.recipe import load_recipe
from gcm_edit.steering.plan import n_selected


@pytest.mark.parametrize("concept", ["refusal", "sycophancy"])
def test_other_builtin_concepts_end_to_end(env, tmp_path, concept):
    """The refusal (explicit pairs) and sycophancy (poem + opinion) recipes export and verify."""
    out = tmp_path / concept
    result = _export(env["model"], out, "--concept", concept)
    assert result.exit_code == 0, (result.output, result.exception)
    manifest = json.loads((out / "gcm_edit.json").read_text())
    recipe = load_recipe(concept)
    assert manifest["recipe"]["name"] == concept and manifest["recipe"]["judge"] == recipe.judge
    assert manifest["recipe"]["explicit_pairs"] is (concept == "refusal")
    assert manifest["pairs"]["n_questions"] == N_TRAIN
    assert manifest["verification"]["greedy_identical"] is True
    assert [s["question"] for s in manifest["samples"]] == recipe.heldout[:2]


def test_composed_concepts_export(env, tmp_path):
    """--concept verse --concept refusal: one checkpoint, each concept judged alone and composed."""
    out = tmp_path / "composed"
    result = _export(env["model"], out, "--concept", "verse", "--concept", "refusal")
    assert result.exit_code == 0, (result.output, result.exception)
    manifest = json.loads((out / "gcm_edit.json").read_text())
    rows = manifest["composition"]
    assert [r["concept"] for r in rows] == ["verse", "refusal"]
    for row in rows:
        assert len(row["heads"]) == n_selected(12, K_PERCENT)
        assert {"base_success", "alone_success", "composed_success"} <= set(row)
    assert len(manifest["steering"]["heads"]) == 2 * n_selected(12, K_PERCENT)
    assert manifest["verification"]["greedy_identical"] is True
    assert "## Composed concepts" in (out / "README.md").read_text()
    assert "Composed concepts" in result.output
