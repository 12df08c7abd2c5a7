"""The whole `gcm-edit export` on a tiny random Llama: folder contents, caching, atomicity."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from export_helpers import K_PERCENT, N_TRAIN, _export, _leftovers

from gcm_edit.cache import sha256_file
from gcm_edit.commands.settings import DEFAULT_ALPHA
from gcm_edit.errors import GcmEditError
from gcm_edit.inputs.recipe_files import load_recipe
from gcm_edit.memory import StagePeaks
from gcm_edit.model.heads import add_to_heads
from gcm_edit.steering.plan import SteeringPlan, n_selected

# monkeypatch target: the verification the export runs before moving OUT into place
VERIFY_EXPORT = "gcm_edit.commands.export_write.verify_export"


def test_no_usable_pairs(tiny_model_dir, tmp_path):
    """With the real verse judge a random model keeps no pairs: exit 2, clear error, no OUT."""
    out = tmp_path / "out"
    result = _export(tiny_model_dir, out)
    assert result.exit_code == 2, (result.output, result.exception)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert "no usable pairs: the contrast prompts gave the concept (judged by verse)" in errors[0]
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
        "gcm_edit_recipe.yaml",
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
    assert steering["alpha"] == DEFAULT_ALPHA
    heads = steering["heads"]
    assert len(heads) == n_selected(12, K_PERCENT) == 3
    for head in heads:
        assert set(head) >= {"layer", "head", "score", "delta_norm", "scale"}
        assert 0 <= head["layer"] < 3 and 0 <= head["head"] < 4
        assert head["delta_norm"] > 0
        assert head["scale"] == 1.0

    assert set(manifest["metrics"]) == {"base", "steered", "prompted"}  # + the prompting reference
    for name in ("base", "steered", "prompted"):
        metrics = manifest["metrics"][name]
        assert metrics["n"] == 2
        for key in ("success", "concept", "fluent", "relevant"):
            rate = metrics[key]
            assert rate["n"] == 2 and 0 <= rate["k"] <= 2
            assert rate["low"] <= rate["rate"] == rate["k"] / 2 <= rate["high"]
    assert len(manifest["samples"]) == 2
    retention = manifest["retention"]
    assert retention["kl"] > 0 and retention["kl_first_token"] > 0 and retention["kl_on_policy"] > 0
    capability = manifest["capability"]
    assert capability["base"]["n"] == capability["steered"]["n"] >= 100

    verification = manifest["verification"]
    assert verification["max_abs_logit_diff"] <= 1e-4
    assert verification["greedy_identical"] is True

    assert set(manifest["files"]) == {"model.safetensors", "gcm_edit_plan.safetensors"}
    for name, digest in manifest["files"].items():
        assert sha256_file(out / name) == digest

    peaks = manifest["peak_rss_gb"]  # every stage that ran (this export was cold) has its peak
    assert set(peaks) == {stage for stage, seconds in manifest["timings_s"].items() if seconds}
    assert all(0.05 < gb < 64 for gb in peaks.values()), peaks
    assert manifest["peak_rss_method"] == StagePeaks().method  # the kernel's mark or sampling


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
    # the share asked (--k 25), never a float's every digit ("25.0%", "2.962962962962963%")
    n = len(manifest["steering"]["heads"])
    assert f"{n} attention heads (25% of" in " ".join(card.split())


def test_card_and_manifest_carry_every_shared_fact(exported):
    """What a person receiving the folder needs, in the card and machine-readably."""
    out, _ = exported
    card = (out / "README.md").read_text()
    manifest = json.loads((out / "gcm_edit.json").read_text())
    header = card.split("---\n")[1]
    # a local folder that names no hub repo: no `base_model` a Hub would misread, and why
    assert manifest["base_model"]["hub_id"] is None and "base_model" not in header
    assert "no `base_model` field" in " ".join(card.split())
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
        "export with `--gguf f32`",  # the llama.cpp route
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


def forget_verifications(env) -> None:
    """Verification results are cached per folder content: drop them so verify runs again."""
    for entry in env["cache"].rglob("verification-*.json"):
        entry.unlink()


@pytest.mark.parametrize(
    ("error", "exit_code"),
    [(RuntimeError("boom"), 1), (KeyboardInterrupt(), 130), (GcmEditError("bad export"), 2)],
    ids=["exception", "interrupt", "gcm-error"],
)
def test_failed_verification_leaves_nothing(env, monkeypatch, error, exit_code):
    """An export that dies in verification leaves neither OUT nor a .OUT.partial-* folder."""

    def broken_verify(*_args, **_kwargs):
        raise error

    monkeypatch.setattr(VERIFY_EXPORT, broken_verify)
    forget_verifications(env)
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

    monkeypatch.setattr(VERIFY_EXPORT, broken_verify)
    forget_verifications(env)
    result = _export(env["model"], out, "--force")
    assert result.exit_code == 1
    assert {p.name: sha256_file(p) for p in out.iterdir()} == before
    assert _leftovers(out) == []


def test_relative_out_folder(env, tmp_path, monkeypatch):
    """The default --out is relative (checkpoints/...): verification must still find it."""
    monkeypatch.chdir(tmp_path)
    result = _export(env["model"], "checkpoints/tiny-verse")
    assert result.exit_code == 0, (result.output, result.exception)
    assert (tmp_path / "checkpoints" / "tiny-verse" / "model.safetensors").is_file()


def test_export_refuses_fsdp(env, tmp_path):
    result = _export(env["model"], tmp_path / "x", "--strategy", "fsdp")
    assert result.exit_code == 2 and "gcm-edit score --strategy fsdp" in result.stderr


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


@pytest.mark.parametrize(("form", "relation"), [("full", "finetune"), ("adapter", "adapter")])
def test_card_links_a_known_base_by_its_hub_id(exported, form, relation):
    """The Hub's model tree reads `base_model` (a hub id) and `base_model_relation`."""
    from gcm_edit.checkpoint.card import model_card
    from gcm_edit.checkpoint.manifest import Manifest

    out, _ = exported
    manifest = Manifest.model_validate_json((out / "gcm_edit.json").read_text())
    manifest.base_model.hub_id = "HuggingFaceTB/SmolLM2-135M-Instruct"
    manifest.export.format = form
    header = model_card(manifest).split("---\n")[1]
    assert "base_model: HuggingFaceTB/SmolLM2-135M-Instruct\n" in header
    assert f"base_model_relation: {relation}\n" in header


def test_card_names_an_llm_judge_and_not_a_rule(exported):
    """A rule judge goes without saying; the LLM that replaced it (--judge-url, --judge-model)
    is named with its question."""
    from gcm_edit.checkpoint.card import model_card
    from gcm_edit.checkpoint.manifest import Manifest

    out, _ = exported
    manifest = Manifest.model_validate_json((out / "gcm_edit.json").read_text())
    assert manifest.recipe.judge == "verse"
    assert "The concept is judged by" not in model_card(manifest)
    manifest.recipe.judge = 'an LLM (judge.gguf in llama.cpp) asked "Is it verse?"'
    assert f"The concept is judged by {manifest.recipe.judge}." in model_card(manifest)
