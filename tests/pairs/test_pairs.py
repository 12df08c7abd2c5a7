"""Prompts, batched greedy generation and contrastive pair building on the tiny model."""

from __future__ import annotations

import pytest
import torch

from gcm_edit.cache import read_json, write_json
from gcm_edit.inputs.prompts import chat_messages, encode_prompt
from gcm_edit.inputs.recipe import Directive, Prefill
from gcm_edit.inputs.recipe_files import load_recipe
from gcm_edit.model.generation import Decoding, cut_at_stop, decode, generate
from gcm_edit.pairs.contrastive import PairSet, build_pairs

QUESTIONS = ["Why is the sky blue?", "How do plants grow?", "What is the moon?", "Why?"]


def test_chat_messages_directive_placement():
    """The two prompts of a pair differ only in the directive text, placed as configured."""
    suffix = Directive(original="Answer in prose.", contrast="Answer in verse.")
    assert chat_messages("Q?", suffix, "contrast") == [
        {"role": "user", "content": "Q? Answer in verse."}
    ]
    prefix = Directive(original="Be plain.", contrast="Be poetic.", placement="prefix")
    assert chat_messages("Q?", prefix, "original") == [{"role": "user", "content": "Be plain. Q?"}]
    system = Directive(original="Be plain.", contrast="Be poetic.", role="system")
    assert chat_messages("Q?", system, "contrast") == [
        {"role": "system", "content": "Be poetic."},
        {"role": "user", "content": "Q?"},
    ]
    assert chat_messages("Q?", None, "contrast") == [{"role": "user", "content": "Q?"}]


def test_encode_prompt_ends_at_assistant_turn(tiny_tokenizer):
    """Prompt tokens are the chat template with the generation prompt, no extra specials."""
    ids = encode_prompt(tiny_tokenizer, chat_messages("Why is the sky blue?", None, "original"))
    tokens = tiny_tokenizer.convert_ids_to_tokens(ids)
    assert tokens[:2] == ["<|im_start|>", "user"]
    assert tokens[-2:] == ["<|im_start|>", "assistant"]
    assert tokens.count("<|im_start|>") == 2


def test_batched_generation_equals_one_by_one(llama_factory, tiny_tokenizer):
    """Left padding must not change greedy answers: batch of 3 == each prompt alone."""
    model = llama_factory("gqa_head_dim16", seed=21)
    prompts = [encode_prompt(tiny_tokenizer, chat_messages(q, None, "original")) for q in QUESTIONS]
    assert len({len(p) for p in prompts}) > 1
    decoding = Decoding(max_new_tokens=10)
    batched = generate(model, tiny_tokenizer, prompts, decoding, batch_size=3)
    alone = generate(model, tiny_tokenizer, prompts, decoding, batch_size=1)
    assert batched == alone
    assert all(len(r) >= 1 for r in batched)


def test_generation_stops_after_eos(llama_factory, tiny_tokenizer):
    """Responses are cut right after the first end-of-sequence token."""
    model = llama_factory("mha", seed=22)
    eos = tiny_tokenizer.eos_token_id
    bump = torch.zeros(64)
    bump[eos] = 100.0  # make <|im_end|> the greedy choice
    model.lm_head.register_forward_hook(lambda _m, _a, logits: logits + bump)
    prompts = [encode_prompt(tiny_tokenizer, chat_messages(q, None, "original")) for q in QUESTIONS]
    responses = generate(model, tiny_tokenizer, prompts, Decoding(max_new_tokens=6), batch_size=4)
    assert responses == [[eos]] * len(prompts)
    assert decode(tiny_tokenizer, responses) == [""] * len(prompts)


def test_no_repeat_ngram_in_generation(llama_factory, tiny_tokenizer):
    """The shipped decoding never repeats a token 3-gram."""
    model = llama_factory("gqa", seed=23)
    prompts = [encode_prompt(tiny_tokenizer, chat_messages(q, None, "original")) for q in QUESTIONS]
    for prompt, response in zip(
        prompts, generate(model, tiny_tokenizer, prompts, Decoding(max_new_tokens=24)), strict=True
    ):
        seq = prompt + response
        grams = [tuple(seq[i : i + 3]) for i in range(len(seq) - 2)]
        assert len(grams) == len(set(grams))


@pytest.fixture
def pair_set(llama_factory, tiny_tokenizer, monkeypatch) -> tuple[PairSet, list]:
    """Pairs from the tiny model with a judge that knows the concept by a marker word."""
    model = llama_factory("gqa_head_dim16", seed=24)
    recipe = load_recipe("verse")
    decoding = Decoding(max_new_tokens=6)
    prompts = {
        side: [
            encode_prompt(tiny_tokenizer, chat_messages(q, recipe.directive, side))
            for q in QUESTIONS
        ]
        for side in ("original", "contrast")
    }
    answers = {
        side: decode(tiny_tokenizer, generate(model, tiny_tokenizer, ids, decoding))
        for side, ids in prompts.items()
    }
    # Concept present: contrast answers of questions 0-2, plus the original answer of question 1.
    present = {answers["contrast"][i] for i in range(3)} | {answers["original"][1]}
    assert len(set(answers["contrast"][:3]) | set(answers["original"])) == 3 + len(QUESTIONS), (
        "tiny model gave duplicate answers; pick another seed"
    )
    recipe = load_recipe("verse").model_copy(update={"train": QUESTIONS})
    pairs = build_pairs(
        model,
        tiny_tokenizer,
        recipe,
        judge=present.__contains__,
        decoding=decoding,
        batch_size=2,
    )
    return pairs, prompts, answers


def test_build_pairs_keeps_only_adherent_pairs(pair_set):
    """Kept = concept in the contrast answer and absent from the original answer."""
    pairs, prompts, answers = pair_set
    assert pairs.n_questions == 4
    assert [p.question for p in pairs.pairs] == [QUESTIONS[0], QUESTIONS[2]]
    assert [d["question"] for d in pairs.dropped] == [QUESTIONS[1], QUESTIONS[3]]
    assert pairs.contrast_adherence == 0.75
    assert pairs.original_clean == 0.75
    first = pairs.pairs[0]
    assert first.prompt_orig == prompts["original"][0]
    assert first.prompt_contrast == prompts["contrast"][0]
    assert first.text_orig == answers["original"][0]
    assert first.text_contrast == answers["contrast"][0]


def test_pair_set_json_round_trip(pair_set, tmp_path):
    """The pairs cache file restores exactly the same pairs."""
    pairs, _, _ = pair_set
    write_json(tmp_path / "pairs.json", pairs.to_json())
    assert PairSet.from_json(read_json(tmp_path / "pairs.json")) == pairs


def test_prefill_starts_the_contrast_response(llama_factory, tiny_tokenizer):
    """The prefill is the first part of the contrast response, the model continues from it
    exactly as if the prompt ended with it, and the original side is untouched."""
    model = llama_factory("gqa_head_dim16", seed=25)
    decoding = Decoding(max_new_tokens=5)
    recipe = load_recipe("verse").model_copy(
        update={"train": QUESTIONS[:2], "prefill": Prefill(contrast="the sun is bright")}
    )
    pairs = build_pairs(
        model,
        tiny_tokenizer,
        recipe,
        judge=lambda text: text.startswith("the sun is bright"),
        decoding=decoding,
    )
    prefill = tiny_tokenizer("the sun is bright", add_special_tokens=False)["input_ids"]
    assert len(pairs.pairs) == 2 and pairs.contrast_adherence == 1.0
    for pair in pairs.pairs:
        assert pair.text_contrast.startswith("the sun is bright")
        continued = generate(model, tiny_tokenizer, [pair.prompt_contrast + prefill], decoding)[0]
        assert pair.response_contrast == prefill + continued
        assert (
            pair.response_orig == generate(model, tiny_tokenizer, [pair.prompt_orig], decoding)[0]
        )
        assert pair.prompt_contrast[-len(prefill) :] != prefill  # the prompt stays the prompt


def test_stop_strings_end_the_answer(llama_factory, tiny_tokenizer):
    """A base model's answer ends before the tokens that spell the first stop string."""
    ids = tiny_tokenizer("the sun is bright ? How do plants grow", add_special_tokens=False)
    row = ids["input_ids"]
    assert cut_at_stop(tiny_tokenizer, row, ("? How",)) == row[:4]
    assert cut_at_stop(tiny_tokenizer, row, ("moon",)) == row
    assert cut_at_stop(tiny_tokenizer, row, ("the sun",)) == []
    assert repr(Decoding()) == "Decoding(max_new_tokens=96, no_repeat_ngram_size=3)"
    model = llama_factory("gqa", seed=23)
    prompts = [encode_prompt(tiny_tokenizer, chat_messages(q, None, "original")) for q in QUESTIONS]
    free = generate(model, tiny_tokenizer, prompts, Decoding(max_new_tokens=12))
    word = tiny_tokenizer.decode(free[0][3:4])
    stopped = generate(model, tiny_tokenizer, prompts, Decoding(max_new_tokens=12, stop=(word,)))
    assert stopped[0] == cut_at_stop(tiny_tokenizer, free[0], (word,))
    assert len(stopped[0]) <= 3
