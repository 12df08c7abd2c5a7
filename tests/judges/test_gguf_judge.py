"""`--judge-model file.gguf`: the default model, converted to an f32 GGUF, judges in llama.cpp
with the chat request `--judge-url` sends; checked against the same model in transformers
choosing between yes and no on the same chat."""

from __future__ import annotations

import functools
import json
from types import SimpleNamespace

import pytest
import torch
from real_models import default_model
from typer.testing import CliRunner

from gcm_edit.checkpoint.gguf import convert_to_gguf
from gcm_edit.cli.app import app
from gcm_edit.inputs.recipe_files import load_recipe
from gcm_edit.judges import GgufJudge, make_judge
from gcm_edit.judges.llm import chat_request

pytestmark = pytest.mark.integration

QUESTION = "Is this answer written in verse?"
TEXTS = [
    "Roses are red,\nviolets are blue,\nsugar is sweet,\nand so are you.",
    "The sky is blue because air scatters blue light more than red light.",
    "Bees make honey from the nectar of flowers.",
    "In the sky, clouds are born,\nA delicate dance of light and shadow,\nThe threads of fate.",
    "Trains run on rails, pulled by a locomotive.",
    "Yes.",
    "No, I cannot answer that.",
    "Once upon a midnight dreary, while I pondered, weak and weary.",
]


@pytest.fixture(scope="module")
def judge(integration_cache, tmp_path_factory):
    """The default model in transformers and as the f32 GGUF that judges."""
    model, tokenizer = default_model(integration_cache)
    folder = tmp_path_factory.mktemp("judge")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    path = convert_to_gguf(folder, folder / "judge.gguf", "f32")
    return SimpleNamespace(model=model, tokenizer=tokenizer, path=path, folder=folder)


@torch.no_grad()
def reference_verdict(model, tokenizer, text: str, question: str = QUESTION) -> bool:
    """What greedy decoding under the yes/no grammar says, in transformers: the most likely
    first token that can begin "yes", "Yes", "no" or "No" (the grammar allows only those)."""
    messages = chat_request(question, text, "judge")["messages"]
    chat = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    ids = torch.tensor([tokenizer(chat, add_special_tokens=False)["input_ids"]])
    logits = model(ids).logits[0, -1]
    allowed, yes = yes_no_tokens(tokenizer)
    best = allowed[int(logits[allowed].argmax())]
    return best in yes


@functools.cache
def yes_no_tokens(tokenizer) -> tuple[list[int], set[int]]:
    """The tokens that can begin "yes", "Yes", "no" or "No", and those of them that begin a yes."""
    pieces = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    words = ("yes", "Yes", "no", "No")
    allowed = [i for i, p in enumerate(pieces) if p and any(w.startswith(p) for w in words)]
    return allowed, {i for i in allowed if pieces[i][0] in "yY"}


def test_gguf_judge_says_what_the_model_prefers(judge):
    gguf = make_judge("verse", None, QUESTION, str(judge.path))
    assert isinstance(gguf, GgufJudge)
    verdicts = [gguf(text) for text in TEXTS]
    expected = [reference_verdict(judge.model, judge.tokenizer, text) for text in TEXTS]
    assert verdicts == expected
    assert len(set(expected)) == 2, "the texts should draw both verdicts"
    assert [gguf.grade(text) for text in TEXTS] == [float(v) for v in expected]


def test_eval_judges_with_a_local_gguf(judge, integration_cache, monkeypatch, tmp_path):
    """`gcm-edit eval --judge-model file.gguf`: every answer's concept verdict is the GGUF's."""
    monkeypatch.setenv("GCM_EDIT_CACHE", str(integration_cache))
    report = tmp_path / "eval.json"
    result = CliRunner().invoke(
        app,
        ["eval", str(judge.folder), "--judge-model", str(judge.path), "--n-questions", "3"]
        + ["--max-new-tokens", "24", "--out", str(report)],
    )
    assert result.exit_code == 0, (result.output, result.exception)
    data = json.loads(report.read_text())
    assert data["judge"].startswith("an LLM (judge.gguf in llama.cpp) asked")
    answers = data["answers"]
    question = load_recipe("verse").llm_question()
    assert [a["concept"] for a in answers] == [
        reference_verdict(judge.model, judge.tokenizer, a["answer"], question) for a in answers
    ]
