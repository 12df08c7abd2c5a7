"""Recipes: built-ins load, and every malformed recipe fails fast with one line naming the field."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from gcm_edit.errors import GcmEditError
from gcm_edit.inputs.prompts import training_prompts
from gcm_edit.inputs.recipe import BUILTIN_DIR, MAX_CUE_CHARS, Recipe
from gcm_edit.inputs.recipe_files import builtin_names, load_recipe


def _valid() -> dict:
    return {
        "name": "tiny",
        "description": "A test concept.",
        "judge": "verse",
        "directive": {"original": "Answer in prose.", "contrast": "Answer in verse."},
        "train": ["Why is the sky blue?", "How do plants grow?"],
        "validation": ["What is rain?"],
        "heldout": ["Why do cats purr?"],
    }


def _write(tmp_path, data, name: str = "recipe.yaml"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def test_builtin_recipes_load():
    """Every shipped recipe validates (a broken built-in would break the default command)."""
    names = builtin_names()
    assert "verse" in names
    for name in names:
        recipe = load_recipe(name)
        assert isinstance(recipe, Recipe)
        assert recipe.name == name


@pytest.mark.parametrize(
    ("name", "n_train", "n_heldout"),
    [("verse", 40, 20), ("refusal", 50, 25), ("sycophancy", 30, 12)],
)
def test_builtin_splits_are_disjoint_and_large_enough(name, n_train, n_heldout):
    """Held-out success is only meaningful if no held-out prompt was used for training."""
    recipe = load_recipe(name)
    training = training_prompts(recipe)
    train = {
        text
        for _, orig, contrast in training
        for text in (orig[-1]["content"], contrast[-1]["content"])
    }
    train |= set(recipe.train or [])
    validation, heldout = set(recipe.validation), set(recipe.heldout)
    assert len({label for label, _, _ in training}) == len(training), "duplicate training prompts"
    assert len(recipe.heldout) == len(heldout), "duplicate held-out prompts"
    assert not train & validation
    assert not train & heldout
    assert not validation & heldout
    assert len(training) >= n_train
    assert len(validation) >= 8
    assert len(heldout) >= n_heldout


def test_refusal_pairs_differ_in_a_few_words():
    """Refusal pairs are minimal contrasts: harmless vs harmful requests sharing most words."""
    for pair in load_recipe("refusal").pairs:
        original, contrast = pair.original.split(), pair.contrast.split()
        shared = len(set(original) & set(contrast))
        assert original[:2] == contrast[:2] and shared >= 3, pair


def test_recipe_by_path_and_sha(tmp_path):
    """A recipe file path works, and its sha256 identifies its content."""
    path = _write(tmp_path, _valid())
    recipe = load_recipe(str(path))
    assert recipe.directive.role == "user" and recipe.directive.placement == "suffix"
    assert recipe.sha256() == load_recipe(str(path)).sha256()
    changed = {**_valid(), "heldout": ["Something else?"]}
    assert load_recipe(str(_write(tmp_path, changed, "other.yml"))).sha256() != recipe.sha256()


def test_builtin_recipe_by_path():
    """Passing the built-in file itself equals passing its name."""
    assert load_recipe(str(BUILTIN_DIR / "verse.yaml")) == load_recipe("verse")


def test_unknown_concept_lists_known():
    """A typo in --concept names the concepts that exist."""
    with pytest.raises(GcmEditError) as info:
        load_recipe("verze")
    message = str(info.value)
    assert "verze" in message
    assert "known concepts" in message
    for name in builtin_names():
        assert name in message
    assert "\n" not in message


def test_missing_recipe_file(tmp_path):
    with pytest.raises(GcmEditError, match="recipe file not found"):
        load_recipe(str(tmp_path / "nope.yaml"))


def _case(**changes):
    data = _valid()
    for key, value in changes.items():
        if value is _DELETE:
            del data[key]
        else:
            data[key] = value
    return data


_DELETE = object()

MALFORMED = {
    "missing-directive": (_case(directive=_DELETE), "directive"),
    "missing-name": (_case(name=_DELETE), "name"),
    "wrong-type": (_case(max_new_tokens="many"), "max_new_tokens"),
    "zero-tokens": (_case(max_new_tokens=0), "max_new_tokens"),
    "directive-not-mapping": (_case(directive="be poetic"), "directive"),
    "empty-train": (_case(train=[]), "train"),
    "empty-heldout": (_case(heldout=[]), "heldout"),
    "blank-question": (_case(train=["Why?", "   "]), "train.1"),
    "question-not-text": (_case(heldout=["Why?", 3]), "heldout.1"),
    "pairs-and-directive": (_case(pairs=[{"original": "a", "contrast": "b"}]), "pairs"),
    "directive-without-train": (_case(train=_DELETE), "train"),
    "pair-missing-contrast": (
        _case(directive=_DELETE, train=_DELETE, pairs=[{"original": "a"}]),
        "pairs.0.contrast",
    ),
    "file-without-name": (_case(train={"column": "q"}), "train.file"),
    "unknown-judge": (_case(judge="sonnet"), "judge"),
    "extra-field": (_case(colour="blue"), "colour"),
    "extra-directive-field": (
        _case(directive={"original": "a", "contrast": "b", "tone": "c"}),
        "directive.tone",
    ),
    "bad-role": (
        _case(directive={"original": "a", "contrast": "b", "role": "bot"}),
        "directive.role",
    ),
    "empty-contrast": (_case(directive={"original": "a", "contrast": ""}), "directive.contrast"),
    "bad-fluency": (_case(fluency={"max_repeated_rate": 2.0}), "fluency.max_repeated_rate"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_recipe_names_field(tmp_path, case):
    """Validation errors become one line that names the offending field."""
    data, field = MALFORMED[case]
    path = _write(tmp_path, data)
    with pytest.raises(GcmEditError) as info:
        load_recipe(str(path))
    message = str(info.value)
    assert "\n" not in message
    assert "malformed recipe" in message
    assert f"field '{field}'" in message


def test_invalid_yaml(tmp_path):
    """Broken YAML is reported as such, with the line, on one line."""
    path = _write(tmp_path, "name: x\ntrain: [unclosed\n  - y: : :\n")
    with pytest.raises(GcmEditError) as info:
        load_recipe(str(path))
    message = str(info.value)
    assert "not valid YAML" in message
    assert "line" in message
    assert "\n" not in message


@pytest.mark.parametrize("text", ["- just\n- a list\n", "plain text\n", ""])
def test_non_mapping_yaml(tmp_path, text):
    """A YAML list, scalar or empty file is not a recipe."""
    path = _write(tmp_path, text)
    with pytest.raises(GcmEditError, match="expected a mapping"):
        load_recipe(str(path))


def test_errors_give_the_yaml_line(tmp_path):
    """The file line of the offending entry is in the message (here the blank question)."""
    text = yaml.safe_dump(_valid(), sort_keys=False).replace("- How do plants grow?", "- ' '")
    path = _write(tmp_path, text)
    line = next(i for i, row in enumerate(text.splitlines(), 1) if row.strip() == "- ' '")
    with pytest.raises(GcmEditError, match=f"line {line}: field 'train.1'"):
        load_recipe(str(path))


def test_explicit_pairs_recipe(tmp_path):
    data = _case(directive=_DELETE, train=_DELETE)
    data["pairs"] = [{"original": "How do I plant a flower?", "contrast": "How do I plant a bomb?"}]
    recipe = load_recipe(str(_write(tmp_path, data)))
    [(label, original, contrast)] = training_prompts(recipe)
    assert label == "How do I plant a flower?"
    assert original == [{"role": "user", "content": "How do I plant a flower?"}]
    assert contrast == [{"role": "user", "content": "How do I plant a bomb?"}]


@pytest.fixture
def data_files(tmp_path):
    """The same prompts as jsonl, csv and parquet, in a data/ folder beside the recipe."""
    import datasets

    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "train.jsonl").write_text(
        "\n".join(json.dumps({"text": q, "id": i}) for i, q in enumerate(["Why?", "How?", "What?"]))
        + "\n"
    )
    (folder / "pairs.csv").write_text(
        "harmless,harmful\nplant a flower,plant a bomb\nbake bread,bake poison\n"
    )
    datasets.Dataset.from_dict({"question": ["Held one?", "Held two?"]}).to_parquet(
        str(folder / "heldout.parquet")
    )
    return folder


def test_file_backed_recipe(tmp_path, data_files):
    """Question lists and pairs come from local jsonl/csv/parquet through `datasets`."""
    data = _case(train={"file": "data/train.jsonl", "column": "text"})
    data["heldout"] = {"file": "data/heldout.parquet"}
    recipe = load_recipe(str(_write(tmp_path, data)))
    assert recipe.train == ["Why?", "How?", "What?"]
    assert recipe.heldout == ["Held one?", "Held two?"]

    paired = _case(directive=_DELETE, train=_DELETE)
    paired["pairs"] = {"file": "data/pairs.csv", "original": "harmless", "contrast": "harmful"}
    recipe = load_recipe(str(_write(tmp_path, paired, "paired.yaml")))
    assert [(p.original, p.contrast) for p in recipe.pairs] == [
        ("plant a flower", "plant a bomb"),
        ("bake bread", "bake poison"),
    ]
    assert recipe.sha256() != load_recipe(str(_write(tmp_path, _valid(), "plain.yaml"))).sha256()


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            {"file": "data/train.jsonl", "column": "question"},
            "has no column 'question' (columns: text, id)",
        ),
        ({"file": "data/missing.jsonl"}, "file not found"),
        ({"file": "data/train.txt"}, "is not .jsonl, .json, .csv or .parquet"),
    ],
)
def test_bad_data_file_is_one_line(tmp_path, data_files, source, message):
    path = _write(tmp_path, _case(train=source))
    with pytest.raises(GcmEditError, match=re.escape(message)) as info:
        load_recipe(str(path))
    assert "field 'train'" in str(info.value) and "\n" not in str(info.value)


def test_blank_row_in_data_file(tmp_path, data_files):
    (data_files / "blank.jsonl").write_text('{"question": "Fine?"}\n{"question": "  "}\n')
    path = _write(tmp_path, _case(validation={"file": "data/blank.jsonl"}))
    with pytest.raises(GcmEditError, match="blank.jsonl line 2: column 'question' is empty"):
        load_recipe(str(path))


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"distill": _valid()["heldout"]}, "distill"),  # the probe: distillation pool = held-out
        ({"distill": {"file": "data/pool.jsonl"}}, "distill"),
        ({"train": ["Why is the sky blue?", "why do CATS purr"]}, "train"),
        (
            {
                "directive": _DELETE,
                "train": _DELETE,
                "pairs": [{"original": "Why do cats purr?", "contrast": "Why do cats hiss?"}],
            },
            "pairs",
        ),
    ],
)
def test_training_on_held_out_questions_is_refused(tmp_path, changes, field):
    """Held-out questions trained on (train, pairs, the distillation pool) are not held out:
    one line naming the field and its YAML line, before any model is loaded."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "pool.jsonl").write_text('{"question": "Why do cats purr?"}\n')
    text = yaml.safe_dump(_case(**changes), sort_keys=False)
    line = next(i for i, row in enumerate(text.splitlines(), 1) if row.startswith(f"{field}:"))
    with pytest.raises(GcmEditError) as info:
        load_recipe(str(_write(tmp_path, text)))
    message = str(info.value)
    assert "\n" not in message
    assert f"line {line}: field '{field}': 1 of 1 held-out questions are trained on" in message
    assert "'why do cats purr'" in message


@pytest.mark.parametrize(
    ("changes", "split"),
    [
        ({"validation": ["What is rain?", "Why do cats purr?"]}, "1 of 1 held-out"),
        ({"distill": ["what is rain", "Why is grass green?"]}, "1 of 2 distill"),
        ({"train": ["Why is the sky blue?", "What is rain?"]}, "1 of 2 train"),
    ],
)
def test_validation_overlap_is_one_warning_line(tmp_path, capsys, changes, split):
    """A validation question in another split biases tuning: warned, and the recipe loads."""
    load_recipe(str(_write(tmp_path, _case(**changes))))
    warnings = capsys.readouterr().err.strip().splitlines()
    assert len(warnings) == 1
    assert f"{split} questions are also validation questions" in warnings[0]


def test_distilling_on_the_training_questions_is_fine(tmp_path, capsys):
    """The default pool is the training questions: no error, no warning."""
    recipe = load_recipe(str(_write(tmp_path, _case(distill=_valid()["train"]))))
    assert recipe.distill_questions() == _valid()["train"]
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"directive": {"original": "a", "contrast": "x" * 70_000}}, "directive.contrast"),
        ({"prefill": {"contrast": "Sure! " * 400}}, "prefill.contrast"),
        (
            {"base_prompt": {"template": "Q: {question}\n{cue}" + "." * 2_000}},
            "base_prompt.template",
        ),
    ],
)
def test_prompt_text_is_bounded_in_one_line(tmp_path, changes, field):
    """A 70,000-character directive once asked for 39 GB: refused, naming field and limit."""
    with pytest.raises(GcmEditError) as info:
        load_recipe(str(_write(tmp_path, _case(**changes))))
    message = str(info.value)
    assert "\n" not in message
    assert f"field '{field}': String should have at most {MAX_CUE_CHARS} characters" in message


def test_builtin_prompt_text_is_well_within_the_bound():
    """The shipped directives and prefills are a small fraction of MAX_CUE_CHARS."""
    for name in builtin_names():
        recipe = load_recipe(name)
        texts = [*recipe.prefill.model_dump().values()]
        if recipe.directive is not None:
            texts += [recipe.directive.original, recipe.directive.contrast]
        assert max(len(t or "") for t in texts) < MAX_CUE_CHARS // 10
