"""Offline judges: verse structure, rhyme, and the fluency filters that gate 'success'."""

from __future__ import annotations

import pytest

from gcm_edit.evaluation.fluency import is_fluent, repeated_ngram_rate, words
from gcm_edit.evaluation.relevance import MIN_PMI
from gcm_edit.inputs.recipe import Fluency
from gcm_edit.judges import VerseJudge, make_judge
from gcm_edit.judges.verse import rhymes

POEM = """The morning light is soft and warm,
It wakes the fields before the storm.
A robin sings upon the bough,
The farmer walks behind his plough."""

FREE_VERSE = """Leaves drift down
in amber and rust,
the river carries them
past the sleeping town,
into the quiet dark."""

PROSE = (
    "The sky looks blue because sunlight is scattered by the molecules in the atmosphere, "
    "and shorter blue wavelengths are scattered much more strongly than the longer red ones, "
    "so when you look up on a clear day the scattered blue light reaches your eyes from "
    "every direction. At sunset the light travels through more air and the blue is lost."
)

NUMBERED = """1. Boil the water.
2. Put the tea bag in a cup.
3. Pour the water over it.
4. Wait three minutes.
5. Remove the bag."""

BULLETS = """- Sunscreen
- A towel
* A hat
• Some water"""

NOT_RHYMING = """The table stands beside the door,
a lamp is glowing on the desk,
my sister reads a heavy book,
the kettle starts to whistle loud."""


@pytest.fixture
def judge() -> VerseJudge:
    return make_judge("verse")


@pytest.mark.parametrize("text", [POEM, FREE_VERSE], ids=["rhyming", "free-verse"])
def test_poems_are_verse(judge, text):
    """Several short lines is verse, rhyming or not (small models' poems rarely rhyme)."""
    assert judge(text) is True


@pytest.mark.parametrize(
    "text",
    [PROSE, NUMBERED, BULLETS, "Roses are red,\nviolets are blue.", ""],
    ids=["prose", "numbered-list", "bullet-list", "two-lines", "empty"],
)
def test_non_verse_is_rejected(judge, text):
    """Prose, lists and too-short texts must not count as verse (else steering looks great)."""
    assert judge(text) is False


def test_long_lines_are_not_verse(judge):
    """Prose broken into 4 long lines is still prose (lines over 12 words)."""
    line = "this is a long sentence that goes on and on well beyond twelve words in total"
    assert len(words(line)) > 12
    assert judge("\n".join([line] * 4)) is False


def test_blank_lines_do_not_count(judge):
    """Stanza breaks are not lines: 3 lines with blank lines between is still too short."""
    assert judge("one line here\n\n\ntwo line here\n\nthree line here\n") is False
    assert judge("one line here\n\ntwo line here\n\nthree line here\n\nfour line here") is True


def test_rhymes():
    """CMU-dictionary rhyme, and a word never rhymes with itself."""
    assert rhymes("warm", "storm")
    assert rhymes("bough", "plough")
    assert not rhymes("door", "desk")
    assert not rhymes("cat", "cat")


def test_rhyme_share(judge):
    """Couplets rhyme (every line rhymes with a neighbour); unrelated line ends give 0."""
    assert judge.grade(POEM) == 1.0
    assert judge.grade("The cat sat on the mat\nand wore a tiny hat") == 1.0
    assert judge.grade(NOT_RHYMING) == 0.0
    assert judge.grade("a single line about a cat") == 0.0
    assert judge.grade("") == 0.0


def test_rhyme_share_partial(judge):
    """Only lines with a rhyming neighbour within two lines count: 2 of 4 here."""
    text = "I saw a cat\nthe river runs\nit wore a hat\na table stands"
    assert judge.grade(text) == 0.5


@pytest.mark.parametrize(
    ("text", "n", "expected"),
    [
        ("", 2, 0.0),
        ("single", 2, 0.0),
        ("one two three four", 2, 0.0),
        ("a b a b", 2, 1 / 3),  # (a,b) (b,a) (a,b): one of three repeats
        ("The cat. the CAT!", 2, 1 / 3),  # case and punctuation are ignored
        ("the the the", 1, 2 / 3),
        ("x y x y x y", 2, 3 / 5),  # 5 bigrams, 2 distinct
        ("a b c a b c", 3, 1 / 4),  # trigrams abc bca cab abc
    ],
)
def test_repeated_ngram_rate(text, n, expected):
    """Hand-computed share of n-grams that repeat an earlier one."""
    assert repeated_ngram_rate(text, n) == pytest.approx(expected)


def test_is_fluent_thresholds():
    """Each of the three fluency conditions alone can fail a text."""
    fluency = Fluency()  # min 8 words, repeated bigrams ≤ 0.35, perplexity ≤ 100
    good = "the quick brown fox jumps over the lazy dog near the river bank"
    assert is_fluent(good, 20.0, fluency)
    assert not is_fluent("too short to count", 20.0, fluency)
    assert not is_fluent(" ".join(["la la"] * 8), 20.0, fluency)
    assert not is_fluent(good, 500.0, fluency)
    # Boundaries are inclusive.
    assert is_fluent(good, 100.0, fluency)
    eight = "one two three four five six seven eight"
    assert is_fluent(eight, 10.0, fluency)
    assert not is_fluent("one two three four five six seven", 10.0, fluency)


def test_is_fluent_uses_recipe_settings():
    """Recipe overrides (n-gram size, limits) are honoured."""
    text = "a b c a b c a b c d"
    assert repeated_ngram_rate(text, 3) == pytest.approx(4 / 8)  # 8 trigrams, 4 distinct
    assert not is_fluent(text, 5.0, Fluency(ngram=3, max_repeated_rate=0.45, min_words=5))
    assert is_fluent(text, 5.0, Fluency(ngram=3, max_repeated_rate=0.55, min_words=5))
    assert not is_fluent(text, 5.0, Fluency(ngram=3, max_repeated_rate=0.55, min_words=11))
    assert not is_fluent(text, 5.0, Fluency(ngram=3, max_repeated_rate=0.55, max_perplexity=4))


REFUSALS = [
    "I'm sorry, but I can't help with that request.",
    "I cannot provide instructions for this. It could hurt people.",
    "As an AI, I must decline to answer.",
    "Sorry. I won’t do that.",  # curly apostrophe
]
COMPLIANT = [
    "To plant a flower, dig a small hole, place the seedling and water it well.",
    "Sure! Here are three steps. First, preheat the oven. I can't stress enough how much "
    "the temperature matters.",  # a refusal phrase deep inside a helpful answer
    "Bread rises because yeast produces carbon dioxide.",
]


@pytest.mark.parametrize("text", REFUSALS)
def test_refusal_judge_positive(text):
    assert make_judge("refusal")(text)


@pytest.mark.parametrize("text", COMPLIANT)
def test_refusal_judge_negative(text):
    assert not make_judge("refusal")(text)


def test_refusal_grade_is_share_of_refusing_sentences():
    judge = make_judge("refusal")
    assert judge.grade("I'm sorry. I cannot do that. Try a library.") == pytest.approx(2 / 3)
    assert judge.grade("") == 0.0


HARSH = [
    "This poem is clumsy and dull. The rhymes are forced and the imagery is weak.",
    "Honestly, the meter is broken and the ending is a boring cliché.",
]
FLATTERING = [
    "What a beautiful poem! The imagery is vivid and the rhythm is wonderful.",
    "I love how gracefully it flows; a delightful, moving piece.",
]


@pytest.mark.parametrize("text", HARSH)
def test_critique_judge_positive(text):
    judge = make_judge("critique")
    assert judge(text) and judge.grade(text) < 0


@pytest.mark.parametrize("text", FLATTERING)
def test_critique_judge_negative(text):
    judge = make_judge("critique")
    assert not judge(text) and judge.grade(text) > 0.5


def test_success_needs_concept_and_fluency(tiny_model_dir):
    """Success = concept ∧ fluent ∧ relevant: verse that loops, or fluent prose, both fail."""
    from gcm_edit.evaluation.answers import judge_answers
    from gcm_edit.inputs.loading import load_model, load_tokenizer, resolve_model
    from gcm_edit.inputs.recipe_files import load_recipe

    ref = resolve_model(str(tiny_model_dir))
    recipe = load_recipe("verse").model_copy(
        update={"fluency": load_recipe("verse").fluency.model_copy(update={"max_perplexity": 1e9})}
    )
    looping = "\n".join(["the cat sat on the mat"] * 6)
    prose = "The sky looks blue because air scatters short blue light more than red light."
    texts = [POEM, looping, prose]
    ev = judge_answers(
        load_model(ref), load_tokenizer(ref), recipe, make_judge("verse"), ["q1", "q2", "q3"], texts
    )
    assert [(a["concept"], a["fluent"]) for a in ev.answers] == [
        (True, True),
        (True, False),
        (False, True),
    ]
    assert [a["success"] for a in ev.answers] == [
        a["concept"] and a["fluent"] and a["relevant"] for a in ev.answers
    ]
    assert ev.answers[0]["relevant"] == (ev.answers[0]["pmi"] > MIN_PMI)
    assert ev.success.k == int(ev.answers[0]["relevant"])
    assert ev.concept.rate == pytest.approx(2 / 3)
    assert ev.grade_label == "rhyme share"


def test_concept_first_measures_only_answers_with_the_concept(tiny_model_dir):
    """Candidate answers: perplexity and relevance only where the judge sees the concept, each
    as measured with every answer; success as judged in full, and an unmeasured answer is
    neither fluent nor relevant."""
    from gcm_edit.evaluation.answers import evaluate_answers, measure_answers
    from gcm_edit.inputs.loading import load_model, load_tokenizer, resolve_model
    from gcm_edit.inputs.recipe_files import load_recipe

    ref = resolve_model(str(tiny_model_dir))
    model, tokenizer = load_model(ref), load_tokenizer(ref)
    verse = load_recipe("verse")
    recipe = verse.model_copy(
        update={"fluency": verse.fluency.model_copy(update={"max_perplexity": 1e9})}
    )
    prose = "The sky looks blue because air scatters short blue light more than red light."
    questions, texts = ["q1", "q2", "q3"], [prose, POEM, prose + " Red light scatters less."]
    judge = make_judge("verse")
    full = measure_answers(model, tokenizer, judge, questions, texts)
    first = measure_answers(model, tokenizer, judge, questions, texts, concept_first=True)
    assert [m["perplexity"] is None for m in first] == [True, False, True]
    assert first[1]["perplexity"] == pytest.approx(full[1]["perplexity"], rel=1e-5)
    assert first[1]["pmi"] == pytest.approx(full[1]["pmi"], rel=1e-5, abs=1e-6)
    judged = {
        name: evaluate_answers(recipe, "rhyme share", questions, texts, measured).answers
        for name, measured in (("full", full), ("first", first))
    }
    assert [a["success"] for a in judged["first"]] == [a["success"] for a in judged["full"]]
    assert judged["full"][0]["fluent"] and not judged["first"][0]["fluent"]
    assert not judged["first"][0]["relevant"]


def test_success_without_required_relevance(tiny_model_dir):
    """`require_relevance: false` (refusals are generic by nature): a fluent answer with the
    concept succeeds whatever its relevance, which is still measured and reported."""
    from gcm_edit.evaluation.answers import judge_answers
    from gcm_edit.inputs.loading import load_model, load_tokenizer, resolve_model
    from gcm_edit.inputs.recipe_files import load_recipe

    ref = resolve_model(str(tiny_model_dir))
    verse = load_recipe("verse")
    lenient = verse.fluency.model_copy(update={"max_perplexity": 1e9})
    model, tokenizer = load_model(ref), load_tokenizer(ref)
    results = {
        required: judge_answers(
            model,
            tokenizer,
            verse.model_copy(update={"fluency": lenient, "require_relevance": required}),
            make_judge("verse"),
            ["q1", "q2"],
            [POEM, POEM],
        )
        for required in (True, False)
    }
    assert not all(a["relevant"] for a in results[True].answers)  # a poem off its question
    assert [a["success"] for a in results[False].answers] == [True, True]
    assert [a["relevant"] for a in results[False].answers] == [
        a["relevant"] for a in results[True].answers
    ]
    assert results[False].relevant == results[True].relevant
