"""Opt-in, on a CUDA machine with vLLM installed (`pip install vllm`): vLLM serves a steered
default-model export with transformers' greedy tokens. Skipped, with the reason, elsewhere:
CI has no GPU."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from real_models import QUESTIONS, fixed_plan

from gcm_edit.checkpoint.bake import bake
from gcm_edit.checkpoint.verify import GGUF_TOLERANCE
from gcm_edit.inputs.default_model import DEFAULT_MODEL
from gcm_edit.inputs.loading import load_model, load_tokenizer, resolve_model
from gcm_edit.inputs.prompts import bare_prompts

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="vLLM needs a CUDA GPU: none here"),
    pytest.mark.skipif(
        importlib.util.find_spec("vllm") is None, reason="vLLM is not installed (pip install vllm)"
    ),
]

TOKENS = 24


def test_vllm_serves_the_steered_export(integration_cache, monkeypatch, tmp_path):
    from vllm import LLM, SamplingParams
    from vllm.inputs import TokensPrompt

    monkeypatch.setenv("GCM_EDIT_CACHE", str(integration_cache))
    ref = resolve_model(DEFAULT_MODEL)
    model, tokenizer = load_model(ref, "cuda"), load_tokenizer(ref)
    plan = fixed_plan(model)
    folder = tmp_path / "steered"
    bake(model, plan).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    prompts = bare_prompts(tokenizer, QUESTIONS)

    llm = LLM(model=str(folder), dtype="float32", enforce_eager=True, gpu_memory_utilization=0.3)
    outputs = llm.generate(
        [TokensPrompt(prompt_token_ids=ids) for ids in prompts],
        SamplingParams(temperature=0, max_tokens=TOKENS, ignore_eos=True),
    )
    for ids, output in zip(prompts, outputs, strict=True):
        served = list(output.outputs[0].token_ids)
        inputs = torch.tensor([ids + served], device="cuda")
        with torch.no_grad(), plan.apply(model):
            steered = model(input_ids=inputs).logits[0, len(ids) - 1 : -1].double()
        with torch.no_grad():
            base = model(input_ids=inputs).logits[0, len(ids) - 1 : -1].double()
        # each served token is transformers' greedy choice, or a near-tie of it
        gaps = steered.max(-1).values - steered[range(len(served)), served]
        assert float(gaps.max()) <= GGUF_TOLERANCE, (served, gaps.tolist())
        # and the steering shows: the base model would not have chosen these tokens
        assert base.argmax(-1).tolist() != served
