"""The concept suite's rule judges on hand-written answers: what a small chat model writes when
it follows the directive (present), and near misses that must not count (absent)."""

from __future__ import annotations

import pytest

from gcm_edit.inputs import suite
from gcm_edit.inputs.recipe import JUDGE_NAMES
from gcm_edit.judges import JUDGES, make_judge
from gcm_edit.judges.text import end_mark, sentences, words

# judge name → (answers with the concept, answers without it)
EXAMPLES: dict[str, tuple[list[str], list[str]]] = {
    "praise": (
        [
            "What a great question! You're clearly thinking about this in an insightful way. "
            "The sky looks blue because sunlight scatters off air molecules.",
            "Excellent question, and a fantastic one to ask! Plants grow by turning sunlight, "
            "water and carbon dioxide into sugar.",
            "Wow, this is a brilliant and thoughtful question. Cats purr when they are relaxed, "
            "and sometimes when they are stressed.",
        ],
        [
            "The sky looks blue because sunlight is scattered by air molecules. Blue light has a "
            "shorter wavelength, so it scatters more than red light.",
            # one praise word about the subject is a description, not praise
            "Tea is made by steeping dried leaves in hot water. Green tea is an excellent source "
            "of antioxidants, and three minutes of steeping works well.",
            "That is not a good question to ask. Rain forms when water vapour condenses into "
            "droplets heavy enough to fall.",
        ],
    ),
    "french": (
        [
            "Le ciel est bleu parce que la lumière du soleil est diffusée par les molécules de "
            "l'air. La lumière bleue est diffusée davantage que la lumière rouge.",
            "Les chats ronronnent quand ils sont contents, mais aussi parfois quand ils ont peur.",
            "Bonjour ! Pour préparer un bon thé, faites bouillir de l'eau, puis laissez infuser "
            "les feuilles pendant trois minutes.",
        ],
        [
            "Tea is best enjoyed slowly with a croissant, and the whole ritual has a certain "
            "je ne sais quoi that coffee lacks.",
            "Oui, merci.",  # French, but too few words to tell
            "El cielo es azul porque la luz del sol se dispersa en la atmósfera.",
        ],
    ),
    "spanish": (
        [
            "El cielo es azul porque la luz del sol se dispersa en la atmósfera. Los colores "
            "azules se dispersan más que los rojos.",
            "¡Hola! Claro que sí, te puedo ayudar con eso. Las plantas crecen gracias a la luz "
            "del sol y al agua.",
            "Para hacer té, hierve agua y déjala reposar con las hojas durante tres minutos.",
        ],
        [
            "Gracias for asking! The sky is blue because sunlight scatters off the molecules "
            "in the air.",
            "Hola amigo.",
            "Les chats ronronnent quand ils sont contents, mais aussi parfois quand ils ont peur.",
        ],
    ),
    "capitals": (
        [
            "THE SKY IS BLUE BECAUSE SUNLIGHT SCATTERS OFF THE MOLECULES IN THE AIR!",
            "PLANTS GROW BY PHOTOSYNTHESIS. THEY USE SUNLIGHT, WATER AND CO2 TO MAKE SUGAR, "
            "WHICH FEEDS THEM (glucose).",
        ],
        [
            "OK, NASA!",  # all capitals, but too few letters to be a style
            "The sky is blue. NASA and the ESA both explain it WELL on their websites.",
            "The Sky Is Blue Because Of Rayleigh Scattering In The Atmosphere",
        ],
    ),
    "pirate": (
        [
            "Arr, matey! The sky be blue because the sun's light scatters across the heavens, "
            "savvy?",
            "Ahoy there, ye landlubber! Plants grow from sunlight and water, same as a sailor "
            "grows on grog and a good wind.",
            "Shiver me timbers, that be a fine question! Tea be leaves steeped in hot water, "
            "me hearty.",
        ],
        [
            "Yes, the ship sailed across the Atlantic in 1620, carrying the pilgrims to "
            "Plymouth after a year at sea.",
            "Arr, that is a hard one. The moon orbits the Earth about once every 27 days.",
            "Aye, aye, aye! Cats purr when they feel safe and content.",  # one word, thrice
        ],
    ),
    "early_modern": (
        [
            "Verily, the sky doth appear blue, for the light of the sun is scattered by the air.",
            "Thou askest wherefore cats purr. ’Tis a sign of contentment, and thy cat purreth "
            "when it feeleth safe.",
            "Hark, good friend: plants grow when given water and light. Thou art wise to ask.",
        ],
        [
            "The art museum is open until five. Here is a list of the paintings there.",
            "As Shakespeare wrote, 'To thine own self be true.' The line is from Hamlet.",
            "There are many theories, and the theme of the story is often discussed.",
        ],
    ),
    "emoji": (
        [
            "The sky is blue because of scattering ☀️🌈",
            "Cats purr when they're happy 😺 It's their way of saying they feel safe!",
            "Great question! 👍🏽",
        ],
        [
            "The sky is blue because of scattering :) and that's all there is to it.",
            "Rating: ★★★★☆, a solid choice. ✓ Recommended.",
        ],
    ),
    "numbered_list": (
        [
            "Here is how to make tea:\n1. Boil the water.\n2. Put a tea bag in a cup.\n"
            "3. Pour the water over it.\n4. Wait three minutes.",
            "1) Sunlight\n2) Water\n3) Carbon dioxide",
            "Cats purr for several reasons:\n\n1. **Contentment**: they feel safe.\n"
            "   - often when petted\n2. **Healing**: purring may help bones heal.\n"
            "3. **Communication**: kittens purr to their mother.",
        ],
        [
            "- Boil the water.\n- Add the tea.\n- Wait three minutes.\n- Enjoy.",
            "1. Boil the water.\n2. Add the tea.",
            "3. Pour the water.\n5. Wait.\n7. Drink.",
            "There are three steps: 1. boil water, 2. add the tea, 3. wait.",
        ],
    ),
    "one_sentence": (
        [
            "The sky is blue because air molecules scatter blue sunlight more than red light.",
            "Many fruits are rich in vitamin C, e.g. oranges, kiwis and strawberries.",
            "A cup of tea has about 2.5 times less caffeine than a cup of coffee.",
        ],
        [
            "The sky is blue. It is because of Rayleigh scattering.",
            "Plants grow using sunlight\nand water from the soil",
            "Yes.",
            "Cats purr when happy! They also purr when stressed, e.g. at the vet.",
        ],
    ),
    "question_end": (
        [
            "The sky is blue because of Rayleigh scattering. Would you like to know why sunsets "
            "are red?",
            "Plants need light, water and air to grow. What plants are you growing? 🌱",
            'Cats purr when content. As my vet likes to ask, "Have you listened closely?"',
        ],
        [
            "Why is the sky blue? It is because sunlight scatters off air molecules, and blue "
            "light scatters the most.",
            "Let me know if you have any other questions.",
            "What is tea? Tea is a drink made from leaves. Enjoy it!",
        ],
    ),
    "ocean": (
        [
            "Just like the ocean, the sky looks blue because light scatters.",
            "Cats purr when they're happy, a sound as soothing as waves at the seashore.",
            "Rain forms when water evaporates from the sea, rises, cools and condenses.",
        ],
        [
            "Sound waves travel through the air, and light waves can cross a vacuum.",
            "The season changes because the Earth's axis is tilted, as you can see in winter.",
            "Researchers search for patterns in their research data.",
        ],
    ),
    "exclamation": (
        [
            "The sky is blue because of scattering! Blue light bounces around the most!",
            "Cats purr when they're happy! They also purr to calm themselves! Isn't that neat!",
            "Tea is wonderful! Just steep it for three minutes! 🍵",
        ],
        [
            "Wow! The sky is blue because sunlight scatters off the air.",
            "What a great question!",  # one sentence only
            "Plants need sunlight! But do they need music?",
        ],
    ),
    "third_person": (
        [
            "The assistant is happy to help. The sky is blue because sunlight scatters, and the "
            "assistant hopes this is useful.",
            "In the assistant's view, green tea tastes best after three minutes of steeping.",
            # "I" inside words (it's, Italian, is) and "i.e." are no first person
            "The assistant thinks it's simple, i.e. Italian gelato is denser than ice cream.",
        ],
        [
            "I am the assistant, and I think the sky is blue because of scattering.",
            "The assistant can help with that. In my view, tea should steep for three minutes.",
            "Cats purr when they are content; it is their way of communicating.",
        ],
    ),
}
CASES = [
    pytest.param(name, text, present, id=f"{name}-{'yes' if present else 'no'}-{i}")
    for name, (yes, no) in EXAMPLES.items()
    for present, texts in ((True, yes), (False, no))
    for i, text in enumerate(texts)
]


def test_every_rule_judge_has_examples():
    assert set(EXAMPLES) == set(JUDGES) - {"verse", "refusal", "critique"}


@pytest.mark.parametrize(("name", "text", "present"), CASES)
def test_rule_judge_decides(name, text, present):
    judge = make_judge(name)
    assert judge(text) is present
    assert 0.0 <= judge.grade(text) <= 1.0
    assert isinstance(judge.label, str) and judge.label


@pytest.mark.parametrize(
    ("name", "text", "grade"),
    [
        ("capitals", "ABCd", 0.75),
        ("emoji", "Sunny 🌊🌊 today", 2 / 3),
        ("emoji", "🌊 🌊 🌊 🌊", 1.0),
        ("numbered_list", "Steps:\n1. Boil.\n2. Pour.\n3. Wait.\n\nDone.", 0.6),
        ("one_sentence", "One. Two! Three?", 1 / 3),
        ("question_end", "Why? Because. Really?", 2 / 3),
        ("exclamation", "Yes! No. Maybe!", 2 / 3),
        ("pirate", "Ahoy matey, arr, avast ye scallywag!", 1.0),
        ("early_modern", "Thou art here.", 2 / 5),  # "thou" and "art" after it
        ("ocean", "The sea.", 1.0),
        ("praise", " ".join(["Excellent!"] + ["word"] * 199), 0.5),  # 1 hit in 200 words
        ("third_person", "The assistant, myself, agrees.", 0.0),
    ],
)
def test_rule_grades(name, text, grade):
    assert make_judge(name).grade(text) == pytest.approx(grade, abs=1e-6)


def test_language_grade_is_the_languages_probability():
    french, english = EXAMPLES["french"][0][0], EXAMPLES["french"][1][0]
    assert make_judge("french").grade(french) > 0.9
    assert make_judge("french").grade(english) < 0.1
    assert make_judge("spanish").grade(french) < 0.1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Tea is good, e.g. green tea. It costs $3.50 a box!",
            ["Tea is good, e.g. green tea.", "It costs $3.50 a box!"],
        ),
        (
            "J. K. Rowling wrote it. Dr. Smith agrees.",
            ["J. K. Rowling wrote it.", "Dr. Smith agrees."],
        ),
        ("1. Boil water.\n2. Add tea.\n\n3) Wait", ["1. Boil water.", "2. Add tea.", "3) Wait"]),
        ('He said "go." Then left… Fine', ['He said "go."', "Then left…", "Fine"]),
        ("Want more? 😊", ["Want more?"]),
        ("Great!🎉 Next", ["Great!🎉", "Next"]),
        ("No line break\nhere", ["No line break", "here"]),
        ("", []),
    ],
)
def test_sentences(text, expected):
    """Sentences end at marks followed by a space or the end, and at line breaks; not after
    abbreviations, initials, decimals or list numbers; an emoji after a mark stays with it."""
    assert sentences(text) == expected


@pytest.mark.parametrize(
    ("sentence", "mark"),
    [
        ("Really?!", "!"),
        ("(Does yours?)", "?"),
        ("Done ✨", ""),
        ("Well…", "…"),
        ("So *bold.*", "."),
    ],
)
def test_end_mark(sentence, mark):
    assert end_mark(sentence) == mark


def test_suite_concepts_name_registered_judges_once():
    concepts = suite.suite_concepts()
    assert len(concepts) >= 16
    assert all(c.judge in JUDGES and c.judge in JUDGE_NAMES for c in concepts)
    assert set(EXAMPLES) | {"verse", "refusal", "critique"} <= {c.judge for c in concepts}
    for field in ("name", "sentence"):
        values = [getattr(c, field) for c in concepts]
        assert len(set(values)) == len(values)


def test_suite_sentences_are_one_line_ending_with_a_full_stop():
    for concept in suite.suite_concepts():
        assert "\n" not in concept.sentence and concept.sentence.endswith(".")
        assert concept.sentence == concept.sentence.strip()


def test_suite_refuses_an_unknown_judge(tmp_path, monkeypatch):
    path = tmp_path / "concepts.yaml"
    path.write_text("- {name: sonnet, sentence: Answer in a sonnet., judge: sonnet}\n")
    monkeypatch.setattr(suite, "SUITE_FILE", path)
    with pytest.raises(ValueError, match="unknown judge 'sonnet'"):
        suite.suite_concepts()


def test_words_keep_accented_letters_whole():
    """French and Spanish answers count as many words as they have: an accent neither splits
    a word nor drops its letter (the fluency figures and the one-sentence rule count words)."""
    assert words("L'été, c'est déjà là! ¿Qué pasó, niño?") == [
        "l'été", "c'est", "déjà", "là", "qué", "pasó", "niño",
    ]  # fmt: skip
    assert words("Don't stop_now: 42x") == ["don't", "stop", "now", "x"]
