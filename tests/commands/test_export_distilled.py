"""`export --edit distilled` on the tiny model: teacher answers, the learned edit, the kept
snapshot within its KL, exactness of the export and of the adapter, conflicting options."""

from __future__ import annotations

import json

import pytest
import yaml
from export_helpers import _export, _leftovers
from typer.testing import CliRunner

from gcm_edit.cli.app import app
from gcm_edit.inputs.recipe_files import load_recipe
from gcm_edit.steering.plan import SteeringPlan

# A random tiny model writes no real text: every answer passes these limits, so the judge
# (the contrast-side judge of conftest.py: True after the pairs' original answers) decides.
LENIENT = dict(
    ngram=2,
    max_repeated_rate=1.0,
    max_perplexity=1e9,
    min_words=1,
    max_word_run=99,
    max_word_share=1.0,
    max_repeated_lines=1.0,
)


@pytest.fixture
def recipe(tmp_path):
    data = load_recipe("verse").model_dump(exclude_none=True, exclude={"base_prompt"})
    data |= dict(
        name="tinyverse",
        fluency=LENIENT,
        require_relevance=False,
        validation=data["validation"][:2],
        heldout=data["heldout"][:2],
        distill=["How do I make tea?", "Why is the sky blue?", "What is a cat?", "Tell me a fact."],
    )
    path = tmp_path / "tinyverse.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


DISTILLED = [
    "--edit",
    "distilled",
    "--edit-steps",
    "4",
    "--edit-eval-every",
    "2",
    "--edit-rank",
    "2",
    "--distill-questions",
    "4",
    "--teacher-candidates",
    "2",
    "--kl-budget",
    "100",
    "--n-validation",
    "2",
]


def test_distilled_export_is_exact_and_reported(env, tmp_path, recipe):
    out = tmp_path / "distilled"
    result = _export(env["model"], out, "--concept", str(recipe), *DISTILLED)
    assert result.exit_code == 0, (result.output, result.exception)
    manifest = json.loads((out / "gcm_edit.json").read_text())
    report = manifest["edit"]
    assert report["kind"] == "distilled"
    assert report["questions"] == 4 and 1 <= report["teacher_answers"] <= 4
    assert len(report["history"]) == 4 and report["objective"]["rank"] == 2
    steps = [int(r["method"].rsplit(" ", 1)[1]) for r in report["validation"]]
    assert set(steps) <= {0, 2, 4} and report["chosen_step"] in steps
    assert [row["plan"] for row in report["comparison"]] == ["steered", "mean-diff"]
    assert manifest["steering"]["intervention"] == "distilled"
    assert "mean-diff" in manifest["metrics"]
    assert manifest["verification"]["greedy_identical"] is True
    assert manifest["verification"]["max_abs_logit_diff"] <= 1e-4
    plan = SteeringPlan.load(out)
    heads = {tuple(h) for h in report["heads"]}
    assert set(plan.steered_heads) == heads and set(plan.rank1_heads) <= heads
    assert "## Distilled edit" in (out / "README.md").read_text()
    verified = CliRunner().invoke(app, ["verify", str(out)])
    assert verified.exit_code == 0, verified.output

    adapter = tmp_path / "adapter"
    result = _export(
        env["model"],
        adapter,
        "--concept",
        str(recipe),
        *DISTILLED,
        "--format",
        "adapter",
        "--doses",
        "",
    )
    assert result.exit_code == 0, (result.output, result.exception)
    assert json.loads((adapter / "gcm_edit.json").read_text())["verification"]["greedy_identical"]


def test_gated_neurons_widen_every_mlp_exactly(env, tmp_path, recipe, monkeypatch):
    """`--edit-neurons 2` on layer 1: the last snapshot's neurons (kept whatever validation
    says: a random tiny model writes no verse) are baked as two more neurons in every layer's
    MLP, and the folder is still exactly the hooked model."""
    from gcm_edit.commands import candidates

    choose = candidates.best_snapshot

    def last_snapshot(run, strength, snapshots, *args):
        _, _, rows = choose(run, strength, snapshots, *args)
        return (*snapshots[-1], rows)

    monkeypatch.setattr(candidates, "best_snapshot", last_snapshot)
    out = tmp_path / "neurons"
    neurons = ["--edit-neurons", "2", "--edit-neuron-layer", "1"]
    result = _export(env["model"], out, "--concept", str(recipe), *DISTILLED, *neurons)
    assert result.exit_code == 0, (result.output, result.exception)
    manifest = json.loads((out / "gcm_edit.json").read_text())
    objective = manifest["edit"]["objective"]
    assert (objective["neurons"], objective["neuron_layer"]) == (2, 1)
    assert manifest["verification"]["greedy_identical"] is True
    assert manifest["verification"]["max_abs_logit_diff"] <= 1e-4
    assert manifest["edit"]["chosen_step"] == 4
    plan = SteeringPlan.load(out)
    assert [(n.layer, n.count) for n in plan.neurons] == [(1, 2)]
    size = json.loads((env["model"] / "config.json").read_text())["intermediate_size"]
    assert json.loads((out / "config.json").read_text())["intermediate_size"] == size + 2
    assert "gated neurons on layer 1" in (out / "README.md").read_text()
    verified = CliRunner().invoke(app, ["verify", str(out)])
    assert verified.exit_code == 0, verified.output


def test_steered_and_own_answers_join_the_teacher_set(env, tmp_path, recipe):
    """`--teacher-steered`: the start plan's own judged answers are learned with the prompted
    model's; `--edit-self-steps 2`: then the student's own judged answers, two steps more.
    Each is counted in the report and said in the card."""
    out = tmp_path / "steered"
    extra = ["--teacher-steered", "--edit-self-steps", "2"]
    result = _export(env["model"], out, "--concept", str(recipe), *DISTILLED, *extra)
    assert result.exit_code == 0, (result.output, result.exception)
    report = json.loads((out / "gcm_edit.json").read_text())["edit"]
    assert 1 <= report["steered_answers"] <= 4 and 1 <= report["teacher_answers"] <= 4
    assert report["self_steps"] == 2 and 1 <= report["self_kept"] <= 4
    assert len(report["history"]) == 4 + 2
    card = (out / "README.md").read_text()
    assert "answers of the mean-difference-steered model" in card
    assert f"the judges kept {report['self_kept']}, and 2 more steps" in card
    assert "✓ steered answers" in result.output


def test_teacher_samples_do_not_depend_on_the_generation_batch(env, tmp_path, recipe):
    """--generation-batch sets greedy answers' batches only: the judged teacher samples (and
    with them the learned edit) are drawn SAMPLE_BATCH rows a batch, so a second export at
    another batch reuses both, while answers it keys on the batch are generated again."""
    first = _export(env["model"], tmp_path / "a", "--concept", str(recipe), *DISTILLED)
    assert first.exit_code == 0, (first.output, first.exception)
    args = ["--concept", str(recipe), *DISTILLED, "--generation-batch", "1"]
    second = _export(env["model"], tmp_path / "b", *args)
    assert second.exit_code == 0, (second.output, second.exception)
    for stage in ("teacher answers", "distilled edit"):
        assert f"✓ {stage} (cached)" in second.output
    assert "✓ held-out answers (base) (cached)" not in second.output


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (["--learn-scales"], "--learn-scales (now --edit scales) contradicts --edit distilled"),
        (["--intervention", "rank1"], "--intervention is only read with --edit mean-diff"),
    ],
)
def test_conflicting_options_are_refused_before_any_work(env, tmp_path, extra, said):
    out = tmp_path / "refused"
    result = _export(env["model"], out, "--edit", "distilled", *extra)
    assert result.exit_code == 2
    assert said in result.output
    assert not out.exists() and _leftovers(out) == []


def test_neuron_layer_beyond_the_model_is_one_line(env, tmp_path):
    out = tmp_path / "refused"
    result = _export(env["model"], out, "--edit", "distilled", "--edit-neurons", "2",
                     "--edit-neuron-layer", "9")  # fmt: skip
    assert result.exit_code != 0
    assert "--edit-neuron-layer 9: the model has 3 layers (0 to 2)" in result.output
    assert not out.exists() and _leftovers(out) == []


def test_more_distillation_questions_than_the_pool_is_one_line(env, tmp_path):
    """Asking for more teacher questions than the recipe has is refused, not silently cut."""
    out = tmp_path / "refused"
    result = _export(env["model"], out, "--edit", "distilled", "--distill-questions", "100000")
    assert result.exit_code != 0
    assert "--distill-questions 100000: recipe 'verse' has 365 distillation questions" in (
        " ".join(result.output.split())
    )
    assert not out.exists() and _leftovers(out) == []


def test_the_default_teacher_set_takes_a_smaller_pool_whole():
    """A recipe with fewer distillation questions than the default 128 is used whole; only a
    number the user gives beyond the pool is refused."""
    from types import SimpleNamespace

    from gcm_edit.commands.edits.distilled import DistilledConfig
    from gcm_edit.errors import GcmEditError

    recipe = SimpleNamespace(name="small", distill_questions=lambda: ["Why?"] * 10)
    run = SimpleNamespace(recipe=recipe)
    DistilledConfig().check(run)
    DistilledConfig(questions=10).check(run)
    with pytest.raises(GcmEditError, match="--distill-questions 11: recipe 'small' has 10"):
        DistilledConfig(questions=11).check(run)
