"""verify_export: the folder, reloaded by plain transformers in another process, must equal
the hooked steered model; anything else is a one-line failure."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file
from tiny import random_plan

from gcm_edit.cache import sha256_file
from gcm_edit.checkpoint.bake import bake
from gcm_edit.checkpoint.verify import check_files, verify_export
from gcm_edit.errors import GcmEditError
from gcm_edit.model.heads import HeadGeometry
from gcm_edit.steering.plan import SteeringPlan


def _export(model, plan, tokenizer, folder):
    baked = bake(model, plan)
    baked.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def _prompts(tokenizer) -> list[list[int]]:
    from gcm_edit.inputs.prompts import chat_messages, encode_prompt

    return [
        encode_prompt(tokenizer, chat_messages(q, None, "original"))
        for q in ("Why is the sky blue?", "How do plants grow?")
    ]


def test_verify_export_passes_on_correct_export(llama_factory, tiny_tokenizer, tmp_path):
    """A faithful export passes verification with a tiny logit difference."""
    model = llama_factory("gqa_head_dim16", seed=14)
    plan = random_plan(HeadGeometry.of(model.config), seed=3)
    _export(model, plan, tiny_tokenizer, tmp_path)
    result = verify_export(tmp_path, model, plan, _prompts(tiny_tokenizer), 8)
    assert result.max_abs_logit_diff <= 1e-4
    assert result.greedy_identical
    assert result.n_prompts == 2


def test_verify_export_with_shipped_decoding(llama_factory, tiny_tokenizer, tmp_path):
    """A faithful export that ships its decoding (as `export` does) must still verify.

    `export` writes generation_config.json with no_repeat_ngram_size=3; the greedy comparison
    must decode both sides alike, not the export with its shipped settings and the hooked base
    model with its own.
    """
    from transformers import GenerationConfig

    model = llama_factory("gqa_head_dim16", seed=14)
    plan = random_plan(HeadGeometry.of(model.config), seed=3)
    baked = bake(model, plan)
    baked.generation_config = GenerationConfig(
        bos_token_id=2, eos_token_id=3, pad_token_id=1, do_sample=False, no_repeat_ngram_size=3
    )
    baked.save_pretrained(tmp_path)
    tiny_tokenizer.save_pretrained(tmp_path)
    result = verify_export(tmp_path, model, plan, _prompts(tiny_tokenizer), 24)
    assert result.greedy_identical


def test_verify_export_rejects_corrupted_bias(llama_factory, tiny_tokenizer, tmp_path):
    """Corrupting one o_proj bias entry in the saved weights must fail verification."""
    model = llama_factory("gqa_head_dim16", seed=14)
    plan = random_plan(HeadGeometry.of(model.config), seed=3)
    _export(model, plan, tiny_tokenizer, tmp_path)
    weights_path = tmp_path / "model.safetensors"
    weights = load_file(str(weights_path))
    key = "model.layers.1.self_attn.o_proj.bias"
    assert key in weights
    weights[key][5] += 1.0
    save_file(weights, str(weights_path), metadata={"format": "pt"})
    with pytest.raises(GcmEditError, match="verification failed"):
        verify_export(tmp_path, model, plan, _prompts(tiny_tokenizer), 8)


def test_verify_export_rejects_unsteered_model(llama_factory, tiny_tokenizer, tmp_path):
    """Exporting the base model (plan forgotten) must not pass as the steered model."""
    model = llama_factory("mha", seed=15)
    plan = random_plan(HeadGeometry.of(model.config), seed=4)
    empty = SteeringPlan(plan.geometry, [], torch.zeros(0, plan.geometry.head_dim), 1.0, [])
    _export(model, empty, tiny_tokenizer, tmp_path)
    with pytest.raises(GcmEditError):
        verify_export(tmp_path, model, plan, _prompts(tiny_tokenizer), 8)


def test_verify_export_rejects_missing_keys(llama_factory, tiny_tokenizer, tmp_path):
    """A checkpoint whose config promises biases that are not saved must not pass."""
    model = llama_factory("gqa", seed=16)
    plan = random_plan(HeadGeometry.of(model.config), seed=4)
    broken = llama_factory("gqa", seed=16)
    broken.config.attention_bias = True  # config says biases, weights have none
    broken.save_pretrained(tmp_path)
    with pytest.raises(GcmEditError, match="does not load cleanly"):
        verify_export(tmp_path, model, plan, _prompts(tiny_tokenizer), 8)


def test_verify_fails_closed_on_nan_weights(llama_factory, tiny_tokenizer, tmp_path):
    """A NaN in the exported weights is a failure of its own, never 'max |Δlogit| nan'."""
    model = llama_factory("gqa_head_dim16", seed=14)
    plan = random_plan(HeadGeometry.of(model.config), seed=3)
    _export(model, plan, tiny_tokenizer, tmp_path)
    weights = load_file(str(tmp_path / "model.safetensors"))
    weights["model.layers.0.self_attn.o_proj.bias"][0] = float("nan")
    save_file(weights, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(GcmEditError, match="verification failed.*hold NaN or inf"):
        verify_export(tmp_path, model, plan, _prompts(tiny_tokenizer), 4)


def test_verify_fails_closed_when_the_steered_model_overflows(
    llama_factory, tiny_tokenizer, tmp_path
):
    """A finite plan whose hooked model gives inf/NaN logits fails with its own message."""
    model = llama_factory("gqa_head_dim16", seed=14)
    model.save_pretrained(tmp_path)
    tiny_tokenizer.save_pretrained(tmp_path)
    huge = random_plan(HeadGeometry.of(model.config), seed=3)
    huge.alpha = 1e39  # finite as a Python float, inf once applied in fp32
    with pytest.raises(GcmEditError, match="hooked steered model itself gives non-finite"):
        verify_export(tmp_path, model, huge, _prompts(tiny_tokenizer), 4)


def _weights_folder(tmp_path):
    """A folder of two weight files and the `files` its manifest would record for them."""
    folder = tmp_path / "export"
    folder.mkdir()
    save_file({"w": torch.ones(3)}, str(folder / "model.safetensors"))
    save_file({"v": torch.zeros(2)}, str(folder / "gcm_edit_plan.safetensors"))
    files = {path.name: sha256_file(path) for path in folder.iterdir()}
    return folder, files


def test_check_files_accepts_the_files_as_exported(tmp_path):
    folder, files = _weights_folder(tmp_path)
    (folder / "model.gguf").write_bytes(b"GGUF")  # the user's own conversion: not listed
    check_files(folder, files)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("sha", "model.safetensors does not match its sha256 in gcm_edit.json"),
        ("weights", "model.safetensors does not match its sha256 in gcm_edit.json"),
        ("missing", "model.safetensors, listed in gcm_edit.json, is missing"),
        ("extra", "extra.safetensors is not in gcm_edit.json's files"),
        ("outside", "gcm_edit.json lists '../model.safetensors'"),
    ],
)
def test_check_files_fails_closed_in_one_line_naming_the_file(tmp_path, damage, message):
    """A manifest recording other sha256s than the folder's weights, or weights changed after
    the export, fail before any model is loaded."""
    folder, files = _weights_folder(tmp_path)
    if damage == "sha":
        files["model.safetensors"] = "0" * 64
    elif damage == "weights":
        save_file({"w": torch.full((3,), 3.0)}, str(folder / "model.safetensors"))
    elif damage == "missing":
        (folder / "model.safetensors").unlink()
    elif damage == "extra":
        save_file({"x": torch.ones(1)}, str(folder / "extra.safetensors"))
    else:
        files["../model.safetensors"] = files.pop("model.safetensors")
    with pytest.raises(GcmEditError, match="verification failed") as info:
        check_files(folder, files)
    assert message in str(info.value) and "\n" not in str(info.value)
