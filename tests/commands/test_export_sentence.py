"""A concept given as one sentence, on the tiny model: the learned judge is fitted, trusted as
measured (manifest, card), the recipe is written beside the weights and runs again as a file;
a model that barely follows the sentence stops the run before anything is written."""

from __future__ import annotations

import json

from export_helpers import _export, _leftovers
from typer.testing import CliRunner

from gcm_edit.cli.app import app
from gcm_edit.inputs.recipe_files import RECIPE_FILE, load_recipe

SENTENCE = "Answer in the form of a short poem."
# enough training questions for pairs the learned judge keeps (4 give none on a random model)
MORE = ("--n-train", "24")


def test_a_sentence_exports_with_a_learned_judge_and_its_recipe(env, tmp_path):
    out = tmp_path / "sentence"
    result = _export(env["model"], out, "--concept", SENTENCE, *MORE)
    assert result.exit_code == 0, (result.output, result.exception)
    assert "learned judge: a probe on the base model's layer-2 states" in result.output
    trust = json.loads((out / "gcm_edit.json").read_text())["recipe"]["judge_trust"]
    assert trust["n_questions"] == len(load_recipe(SENTENCE).train) and trust["layer"] == 2
    assert 0.65 <= trust["cv_auc"] <= 1.0
    card = (out / "README.md").read_text()
    assert f"out-of-fold AUC {trust['cv_auc']:.2f}" in card
    written = load_recipe(str(out / RECIPE_FILE))
    assert written.sha256() == load_recipe(SENTENCE).sha256() and written.judge == "learned"

    again = _export(env["model"], tmp_path / "again", "--concept", str(out / RECIPE_FILE), *MORE)
    assert again.exit_code == 0, (again.output, again.exception)
    for stage in ("learned judge", "contrastive pairs", "mediation scores"):
        assert f"✓ {stage} (cached)" in again.output


def test_a_sentence_the_model_barely_follows_stops_before_writing(env, tmp_path, monkeypatch):
    """Below the followed-AUC threshold (raised here past the tiny model's measured AUC) the
    run ends in one line naming the AUC and what to try, and leaves nothing behind."""
    monkeypatch.setattr("gcm_edit.commands.learned_judge.FOLLOWED_AUC", 0.999)
    out = tmp_path / "unfollowed"
    result = _export(env["model"], out, "--concept", SENTENCE, *MORE)
    assert result.exit_code == 2, result.output
    line = result.output.strip().splitlines()[-1]
    assert line.startswith("error: tiny-llama barely follows 'Answer in the form of a short poem.'")
    assert "told apart at AUC 0." in line and "try another wording" in line
    assert not out.exists() and _leftovers(out) == []


def test_recipes_new_writes_the_recipe_a_sentence_runs_with(tmp_path):
    result = CliRunner().invoke(app, ["recipes", "new", "Answer like a pirate."])
    assert result.exit_code == 0, result.output
    path = tmp_path / "mine.yaml"
    path.write_text(result.output)
    assert load_recipe(str(path)).sha256() == load_recipe("Answer like a pirate.").sha256()
    assert load_recipe(str(path)).name == "answer-like-a-pirate"
