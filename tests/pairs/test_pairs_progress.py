"""Building pairs for a big recipe is never silent: every stage (encoding the prompts,
generating, judging) shows a progress bar on stderr, and the encoding is batched."""

from __future__ import annotations

import io

from rich.console import Console

from gcm_edit.inputs.prompts import CHUNK, chat_messages, encode_prompt, encode_prompts
from gcm_edit.inputs.recipe_files import load_recipe
from gcm_edit.model.generation import Decoding
from gcm_edit.pairs.contrastive import build_pairs


def test_every_pairs_stage_shows_progress(llama_factory, tiny_tokenizer, monkeypatch):
    """With stderr a terminal, each stage draws its bar (in a log file none would show)."""
    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, width=120)
    monkeypatch.setattr("gcm_edit.console.console", terminal)
    recipe = load_recipe("verse")
    build_pairs(
        llama_factory("gqa", seed=3),
        tiny_tokenizer,
        recipe.model_copy(update={"train": recipe.train[:3]}),
        judge=lambda _text: False,
        decoding=Decoding(max_new_tokens=2),
    )
    shown = screen.getvalue()
    for side in ("original", "contrast"):
        for stage in ("prompts", "answers"):
            assert f"pairs: {side} {stage}" in shown, shown
        assert f"pairs: judging {side} answers" in shown, shown


def test_batched_encoding_equals_one_by_one(tiny_tokenizer):
    """More prompts than one batch, encoded together, as each alone would be."""
    recipe = load_recipe("verse")
    questions = [f"{q} ({i})" for i in range(CHUNK // len(recipe.train) + 2) for q in recipe.train]
    assert len(questions) > CHUNK
    conversations = [chat_messages(q, recipe.directive, "contrast") for q in questions]
    batched = encode_prompts(tiny_tokenizer, conversations)
    assert len(batched) == len(conversations)
    for i in (0, CHUNK - 1, CHUNK, len(conversations) - 1):
        assert batched[i] == encode_prompt(tiny_tokenizer, conversations[i])
