"""`gcm-edit export --concept`: the other built-in recipes end to end, and composed concepts."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml
from export_helpers import K_PERCENT, N_TRAIN, _export
from transformers import AutoTokenizer
from typer.testing import CliRunner

from gcm_edit.cli.app import app
from gcm_edit.inputs.recipe_files import load_recipe, recipe_path
from gcm_edit.steering.plan import n_selected


@pytest.mark.parametrize("concept", ["refusal", "sycophancy"])
def test_other_builtin_concepts_end_to_end(env, tmp_path, concept):
    """The refusal (explicit pairs) and sycophancy (poem + opinion) recipes export and verify."""
    out = tmp_path / concept
    result = _export(env["model"], out, "--concept", str(_tiny_prefill(concept, tmp_path)))
    assert result.exit_code == 0, (result.output, result.exception)
    manifest = json.loads((out / "gcm_edit.json").read_text())
    recipe = load_recipe(concept)
    assert manifest["recipe"]["name"] == concept and manifest["recipe"]["judge"] == recipe.judge
    assert manifest["recipe"]["explicit_pairs"] is (concept == "refusal")
    assert manifest["pairs"]["n_questions"] == N_TRAIN
    assert manifest["verification"]["greedy_identical"] is True
    assert [s["question"] for s in manifest["samples"]] == recipe.heldout[:2]


def _tiny_prefill(concept: str, folder) -> str:
    """The built-in recipe with a prefill the tiny word-level tokenizer can encode (its own,
    for a real model's tokenizer, is refused here in one line) and absolute data paths."""
    data = yaml.safe_load(recipe_path(concept).read_text())
    data["prefill"] = {"contrast": "the sun is bright"}
    for split in ("validation", "heldout", "distill"):
        if split in data:
            data[split]["file"] = str(recipe_path(concept).parent / data[split]["file"])
    path = folder / f"{concept}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_composed_concepts_export(env, tmp_path):
    """--concept verse --concept refusal: one checkpoint, each concept judged alone and composed."""
    out = tmp_path / "composed"
    refusal = str(_tiny_prefill("refusal", tmp_path))
    result = _export(env["model"], out, "--concept", "verse", "--concept", refusal)
    assert result.exit_code == 0, (result.output, result.exception)
    manifest = json.loads((out / "gcm_edit.json").read_text())
    rows = manifest["composition"]
    assert [r["concept"] for r in rows] == ["verse", "refusal"]
    for row in rows:
        assert len(row["heads"]) == n_selected(12, K_PERCENT)
        assert {"base_success", "alone_success", "composed_success"} <= set(row)
    verse, refusal_heads = ({tuple(h) for h in row["heads"]} for row in rows)
    assert not verse & refusal_heads  # disjoint: refusal took the best heads verse left
    assert {tuple(h) for h in rows[1]["given_up"]} <= verse
    assert len(manifest["steering"]["heads"]) == 2 * n_selected(12, K_PERCENT)
    assert manifest["verification"]["greedy_identical"] is True
    assert "## Composed concepts" in (out / "README.md").read_text()
    assert "Composed concepts" in result.output


def test_base_model_without_chat_template_exports(env, tmp_path):
    """A model with no chat template is asked through the recipe's base_prompt: the export
    carries that template, so the exported tokenizer (and `gcm-edit verify`) prompt it the
    same way, and the cache keeps its prompts apart from the chat-template runs."""
    base_dir = tmp_path / "tiny-base"
    shutil.copytree(env["model"], base_dir)
    config = json.loads((base_dir / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (base_dir / "tokenizer_config.json").write_text(json.dumps(config))
    (base_dir / "chat_template.jinja").unlink(missing_ok=True)
    out = tmp_path / "base-export"
    result = _export(base_dir, out)
    assert result.exit_code == 0, (result.output, result.exception)
    manifest = json.loads((out / "gcm_edit.json").read_text())
    assert manifest["recipe"]["prompt_format"] == "base"
    assert (
        "plain-text prompt, saved as this folder's chat template" in (out / "README.md").read_text()
    )
    base = load_recipe("verse").base_prompt
    assert manifest["recipe"]["directive"]["contrast"] == base.contrast
    exported = AutoTokenizer.from_pretrained(out)
    text = exported.apply_chat_template(
        [{"role": "user", "content": "Why ?"}], tokenize=False, add_generation_prompt=True
    )
    assert text == base.template.format(question="Why ?", cue=base.bare)
    assert CliRunner().invoke(app, ["verify", str(out)]).exit_code == 0
    report = tmp_path / "eval.json"
    evaluated = CliRunner().invoke(
        app, ["eval", str(out), "--n-questions", "2", "--max-new-tokens", "8", "--out", str(report)]
    )
    assert evaluated.exit_code == 0, (evaluated.output, evaluated.exception)
    report = json.loads(report.read_text())
    assert report["recipe"]["prompt_format"] == "base"  # asked as the export was measured
    answers = [a["answer"] for a in report["answers"]]
    assert answers == [sample["steered"] for sample in manifest["samples"]]
    assert any("-base-" in p.name for p in (env["cache"] / "runs").iterdir())
