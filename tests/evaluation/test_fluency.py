"""The stricter fluency figures: stutter, one dominating word, repeated lines; perplexity
against one text at a time."""

from __future__ import annotations

import math

import pytest
import torch
from tiny import make_llama, make_tokenizer

from gcm_edit.evaluation.fluency import (
    fluency_figures,
    is_fluent,
    longest_word_run,
    perplexities,
    repeated_line_rate,
    top_word_share,
)
from gcm_edit.inputs.recipe import Fluency


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The tiny world is mine, mine, Mine Mine Mine", 5),
        ("so bold so bold bold, green green green green", 4),
        ("the cat sat on the mat", 1),
        ("", 0),
    ],
)
def test_longest_word_run(text, expected):
    assert longest_word_run(text) == expected


def test_top_word_share_counts_content_words_only():
    light = "A light that is light, the light so bright, a light of night, a light in sight"
    assert top_word_share(light) == pytest.approx(5 / 8)  # light ×5 of 8 content words
    assert top_word_share("the the the of of a cat") == 0.0  # too few content words
    prose = "Plants grow by turning sunlight, water and air into sugar they use as food"
    assert top_word_share(prose) == pytest.approx(1 / 9)


def test_repeated_line_rate():
    assert repeated_line_rate("a line\nanother\nA LINE!\n\na line") == pytest.approx(2 / 4)
    assert repeated_line_rate("one\ntwo") == 0.0 and repeated_line_rate("") == 0.0


def test_each_new_figure_alone_fails_an_answer():
    fluency = Fluency()
    good = "The sea is wide and deep, it holds the fish that swim and the ships that sail"
    assert is_fluent(good, 10.0, fluency)
    stutter = good + " mine mine mine"
    dominated = "Green leaves, green grass, green hills, green trees and green fields are green"
    looping = "The stars are bright tonight\n" * 3 + "and the moon is full of light"
    for text in (stutter, dominated, looping):
        figures = fluency_figures(text, 10.0, fluency)
        assert not is_fluent(text, 10.0, fluency), figures


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # content words: life life lifetime lifetime single life life → echoes at 2, 4, 7
        ("a life of a life, a lifetime of a lifetime, a single life of one life", 3 / 8),
        ("The kettle sings at break of day, the window fogs, the cat's away", 0.0),
        ("a life of a life", 0.0),  # fewer than 8 content words: no figure
    ],
)
def test_echo_rate(text, expected):
    from gcm_edit.evaluation.fluency import echo_rate

    assert echo_rate(text) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("It is clever and clever, a night's night's light", 2),
        ("Frogs croak. Frogs are loud", 0),  # across a sentence: ordinary prose
        ("step by step we go", 1),
        ("the cat sat on the mat", 0),
        # French and Spanish function words are not content: the suite answers in both
        ("C'est le prix le plus bas de la ville", 0),
        ("Es una de las mejores, la mejor de los de su casa", 0),
        ("C'est le prix le prix le plus bas", 1),  # "prix" again two words on
    ],
)
def test_close_repeats(text, expected):
    from gcm_edit.evaluation.fluency import close_repeats

    assert close_repeats(text) == expected


def test_clause_words_catch_word_lists():
    from gcm_edit.evaluation.fluency import mean_clause_words

    assert mean_clause_words("a fire, a flame, a light, a spark") == 2
    assert mean_clause_words("The kettle sings at break of day.\nThe window fogs.") == 5
    assert mean_clause_words("") == 0.0


def test_perplexities_match_one_text_at_a_time():
    """Batched in length order, each text still gets exp(−mean log p) of its own tokens after
    the start token, in the order given."""
    model, tok = make_llama(seed=3), make_tokenizer()
    texts = ["the cat", "sea moon sea moon light night and sun", "tea", "the cat sat on the mat"]
    got = torch.tensor(perplexities(model, tok, texts, batch_size=2), dtype=torch.float64)
    want = []
    for text in texts:
        ids = [tok.bos_token_id] + tok(text, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0].double()
        logprobs = torch.log_softmax(logits, -1)[:-1].gather(1, torch.tensor(ids[1:])[:, None])
        want.append(math.exp(-float(logprobs.mean())))
    torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64), rtol=1e-5, atol=0)
