"""A steered default-model export converted to GGUF by llama.cpp's own converter and run in
llama.cpp (xllamacpp, in-process, exact settings) against transformers.

Real components throughout: the default model, the converter `make setup` installs, the
llama.cpp runtime, and a fixed plan whose greedy text differs from the base model's.
"""

from __future__ import annotations

import json
from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch
from real_models import QUESTIONS, default_model, fixed_plan
from typer.testing import CliRunner

from gcm_edit.checkpoint.bake import bake
from gcm_edit.checkpoint.gguf import convert_to_gguf, gguf_type
from gcm_edit.checkpoint.verify import GGUF_TOLERANCE, verify_gguf
from gcm_edit.cli.app import app
from gcm_edit.errors import GcmEditError
from gcm_edit.inputs.default_model import DEFAULT_MODEL
from gcm_edit.inputs.prompts import bare_prompts
from gcm_edit.model.generation import Decoding, eos_ids, generate
from gcm_edit.model.heads import o_proj_modules
from gcm_edit.model.llamacpp import LlamaCpp
from gcm_edit.steering.neurons import GatedNeurons

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def default(integration_cache, tmp_path_factory):
    """The default model, a fixed steering plan, the baked folder, and GGUFs made on demand."""
    model, tokenizer = default_model(integration_cache)
    plan = fixed_plan(model)
    root = tmp_path_factory.mktemp("gguf")
    made = {}

    def gguf(name: str, outtype: str = "f32", edit=None):
        """`name`/model.gguf: the steered model (or `edit(model)`'s result) as `outtype`."""
        if name not in made:
            folder = root / name
            edited = bake(model, plan) if edit is None else edit(model)
            edited.save_pretrained(folder)
            tokenizer.save_pretrained(folder)
            made[name] = convert_to_gguf(folder, folder / "model.gguf", outtype)
        return made[name]

    prompts = bare_prompts(tokenizer, QUESTIONS)
    return SimpleNamespace(model=model, tokenizer=tokenizer, plan=plan, gguf=gguf, prompts=prompts)


def test_llamacpp_answers_are_transformers_answers(default):
    """The evaluation's decoding (greedy, no repeated 3-gram, cut at EOS) run in llama.cpp on
    the f32 GGUF gives transformers' hooked steered model's token ids, one prompt at a time."""
    decoding = Decoding(max_new_tokens=48)
    model, tokenizer = default.model, default.tokenizer
    with default.plan.apply(model):
        expected = generate(model, tokenizer, default.prompts, decoding, batch_size=1)
    stops = eos_ids(model.generation_config, tokenizer)
    got = LlamaCpp(default.gguf("steered")).answers(default.prompts, decoding, stops, tokenizer)

    def unended(ids: list[int]) -> list[int]:  # llama.cpp may leave the end token out
        return ids[:-1] if ids and ids[-1] in stops else ids

    assert [unended(ids) for ids in got] == [unended(ids) for ids in expected]
    assert all(len(ids) > 8 for ids in got)


def test_slots_decode_concurrent_calls_as_one_slot_does(default):
    """`parallel` slots (bench/generators.py) batch concurrent calls; each answer is still the
    one a single slot gives, token for token."""
    from concurrent.futures import ThreadPoolExecutor

    path = default.gguf("steered")
    one = LlamaCpp(path, n_ctx=128)
    expected = [[t.id for t in one.complete(p, 24)[0]] for p in default.prompts]
    del one
    slots = LlamaCpp(path, n_ctx=128, parallel=len(default.prompts))
    with ThreadPoolExecutor(len(default.prompts)) as pool:
        got = [
            [t.id for t in out]
            for out, _ in pool.map(lambda p: slots.complete(p, 24), default.prompts)
        ]
    assert got == expected and all(len(ids) > 8 for ids in got)


def test_f32_gguf_is_the_steered_model(default):
    checked = verify_gguf(
        default.gguf("steered"), "f32", default.model, default.plan, default.prompts
    )
    assert checked.exact and checked.greedy_identical and checked.off_greedy == 0
    assert checked.max_abs_logprob_diff <= GGUF_TOLERANCE
    assert checked.differs_from_base, "the plan must change the text for the check to mean much"
    assert checked.steering_effect > 100 * checked.mean_abs_logprob_diff
    assert gguf_type(default.gguf("steered")) == "f32"


def test_f32_gguf_carries_gated_neurons(default):
    """Neurons widen every MLP (llama.cpp reads one feed-forward length): the f32 GGUF of a
    plan with heads and gated neurons is still exactly the hooked model."""
    model = default.model
    hidden = model.config.hidden_size
    g = torch.Generator().manual_seed(1)
    neurons = GatedNeurons(
        15,
        torch.randn(4, hidden, generator=g) / hidden**0.5,
        torch.randn(4, hidden, generator=g) / hidden**0.5,
        torch.randn(hidden, 4, generator=g) * 4,
    )
    plan = replace(default.plan, neurons=(neurons,))
    path = default.gguf("neurons", edit=lambda m: bake(m, plan))
    checked = verify_gguf(path, "f32", model, plan, default.prompts)
    assert checked.exact and checked.greedy_identical and checked.off_greedy == 0
    assert checked.max_abs_logprob_diff <= GGUF_TOLERANCE
    assert checked.differs_from_base


def test_q8_0_gguf_is_checked_against_the_steering_effect(default):
    path = default.gguf("steered-q8_0", "q8_0")
    assert gguf_type(path) == "q8_0"
    checked = verify_gguf(path, "q8_0", default.model, default.plan, default.prompts)
    f32 = verify_gguf(default.gguf("steered"), "f32", default.model, default.plan, default.prompts)
    assert not checked.exact
    assert checked.mean_abs_logprob_diff > 10 * f32.mean_abs_logprob_diff  # really quantized
    assert checked.differs_from_base


def test_unsteered_gguf_fails_verification(default):
    """The base model's own GGUF is not the steered model: caught."""
    path = default.gguf("base", edit=lambda model: model)
    with pytest.raises(GcmEditError, match=r"^llama.cpp verification failed .*\(f32\): "):
        verify_gguf(path, "f32", default.model, default.plan, default.prompts)


def test_nan_gguf_fails_closed(default):
    def poisoned(model):
        baked = bake(model, default.plan)
        with torch.no_grad():
            o_proj_modules(baked)[12].weight[:, 5] = float("nan")
        return baked

    path = default.gguf("nan", edit=poisoned)
    with pytest.raises(GcmEditError, match="NaN"):
        verify_gguf(path, "f32", default.model, default.plan, default.prompts)


def test_eval_runtime_llamacpp(default, integration_cache, monkeypatch, tmp_path):
    """`gcm-edit eval FOLDER --runtime llama.cpp` judges FOLDER/model.gguf in llama.cpp."""
    monkeypatch.setenv("GCM_EDIT_CACHE", str(integration_cache))
    folder = default.gguf("steered-q8_0", "q8_0").parent
    report = tmp_path / "eval.json"
    result = CliRunner().invoke(
        app,
        ["eval", str(folder), "--runtime", "llama.cpp", "--base", DEFAULT_MODEL]
        + ["--n-questions", "2", "--max-new-tokens", "32", "--out", str(report)],
    )
    assert result.exit_code == 0, (result.output, result.exception)
    data = json.loads(report.read_text())
    assert data["runtime"] == "llama.cpp (q8_0)"
    assert data["retention"] is None
    assert data["metrics"]["evaluated"]["n"] == 2
    assert all(answer["answer"] for answer in data["answers"])
    assert data["capability"]["steered"]["n"] > 100
