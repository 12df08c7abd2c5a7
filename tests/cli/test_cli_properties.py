"""Property-based: whatever recipe or option values a user throws at `gcm-edit export`, the
answer is one `error:` line and exit code 2, no traceback, and nothing written.

`--model` names a folder that does not exist, so an input that happens to be valid also ends
in a (one-line, exit 2) error before any model is loaded: the property holds for every input.
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from gcm_edit.cli.app import app

BUILTIN = Path(__file__).resolve().parents[2] / "recipes"
VERSE = yaml.safe_load((BUILTIN / "verse.yaml").read_text())
MISSING_MODEL = "/nonexistent/gcm-edit-test-model"
PROPERTY = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def mutated_recipes(draw) -> str:
    """The verse recipe with a few fields deleted, replaced by junk, or junk fields added."""
    recipe = copy.deepcopy(VERSE)
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(sorted(recipe) + ["extra_field"]))
        action = draw(st.sampled_from(["delete", "replace"]))
        if action == "delete" and key in recipe:
            del recipe[key]
        else:
            recipe[key] = draw(values)
    return yaml.safe_dump(recipe, allow_unicode=True)


recipe_texts = mutated_recipes() | values.map(lambda v: yaml.safe_dump(v, allow_unicode=True))
option_values = (
    st.floats(allow_nan=True, allow_infinity=True).map(repr)
    | st.integers(-(10**12), 10**12).map(str)
    | st.text(max_size=12).filter(lambda s: not s.startswith("-"))
)
OPTIONS = [
    "--alpha",
    "--k",
    "--batch-size",
    "--method",
    "--positions",
    "--intervention",
    "--n-train",
    "--max-new-tokens",
    "--lambda-f",
    "--edit-lr",
    "--alphas",
    "--format",
    "--precision",
    "--strategy",
    "--devices",
    "--kl-budget",
    "--doses",
    "--edit",
    "--edit-rank",
    "--gguf",
    "--seed",
    "--generation-batch",
    "--ks",
    "--concept",
]
# Valid values that may not hold together (issue 25): each combination ends in one line, and a
# refused one names an option the user gave.
COMBINABLE = {
    "--kl-budget": ["0.5"],
    "--alpha": ["2", "auto"],
    "--k": ["3", "auto"],
    "--edit": ["mean-diff", "distilled", "scales"],
    "--format": ["full", "adapter"],
    "--doses": ["1,2", "2,2", "2,,3", ""],
    "--gguf": ["q8_0"],
    "--intervention": ["scale", "rank1"],
    "--edit-rank": ["2"],
    "--edit-steps": ["3"],
    "--scale-candidates": ["20"],
    "--alphas": ["1,2"],
    "--ks": ["1"],
    "--concept": ["verse", "sycophancy"],
}


def assert_refused(result, out: Path) -> None:
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert len(errors) == 1, result.output
    assert "Traceback" not in result.output
    assert not out.exists() and not list(out.parent.glob(f".{out.name}.*"))


def assert_recipe_refused(tmp_path_factory, content: str | bytes) -> None:
    assert_recipe_refused_in(tmp_path_factory.mktemp("recipe"), content)


def assert_recipe_refused_in(folder: Path, content: str | bytes) -> None:
    recipe = folder / "concept.yaml"
    recipe.write_bytes(content if isinstance(content, bytes) else content.encode())
    out = folder / "out"
    args = ["export", "--concept", str(recipe), "--model", MISSING_MODEL, "--out", str(out)]
    assert_refused(CliRunner().invoke(app, args), out)


@PROPERTY
@given(text=recipe_texts)
def test_any_recipe_text_is_refused_cleanly(tmp_path_factory, text):
    assert_recipe_refused(tmp_path_factory, text)


@PROPERTY
@given(blob=st.binary(min_size=1, max_size=200))
def test_any_recipe_bytes_are_refused_cleanly(tmp_path_factory, blob):
    assert_recipe_refused(tmp_path_factory, blob)


@PROPERTY
@given(chosen=st.lists(st.tuples(st.sampled_from(OPTIONS), option_values), min_size=1, max_size=4))
def test_any_option_values_are_refused_cleanly(tmp_path_factory, chosen):
    out = tmp_path_factory.mktemp("options") / "out"
    args = ["export", "--model", MISSING_MODEL, "--out", str(out)]
    for option, value in chosen:
        args += [option, value]
    assert_refused(CliRunner().invoke(app, args), out)


@PROPERTY
@given(
    chosen=st.lists(st.sampled_from(sorted(COMBINABLE)), min_size=2, max_size=5, unique=True),
    data=st.data(),
)
def test_option_combinations_are_one_line_naming_an_option(tmp_path_factory, chosen, data):
    out = tmp_path_factory.mktemp("combined") / "out"
    args = ["export", "--model", MISSING_MODEL, "--out", str(out)]
    for option in chosen:
        value = data.draw(st.sampled_from(COMBINABLE[option]))
        args += [option] if value is None else [option, value]
    result = CliRunner().invoke(app, args)
    assert_refused(result, out)
    (error,) = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert "model folder not found" in error or any(
        option in error or option.removeprefix("--") in error for option in chosen
    ), (args, error)


@PROPERTY
@given(blob=st.binary(max_size=300), suffix=st.sampled_from([".jsonl", ".json", ".csv"]))
def test_any_recipe_data_file_is_refused_cleanly(tmp_path_factory, blob, suffix):
    """A recipe whose held-out questions come from a file of any bytes."""
    folder = tmp_path_factory.mktemp("data")
    (folder / f"q{suffix}").write_bytes(blob)
    recipe = {**VERSE, "heldout": {"file": f"q{suffix}"}}
    for field in ("validation", "distill"):  # the built-in's own files, from anywhere
        if isinstance(recipe.get(field), dict):
            recipe[field] = {"file": str(BUILTIN / recipe[field]["file"])}
    assert_recipe_refused_in(folder, yaml.safe_dump(recipe))
