"""Every field of every cached stage's config is in its key, or marked as unable to change the
result, with a reason (gcm_edit/keys.py). Nested values (decoding, objectives, directives) are
walked field by field too."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel

import gcm_edit.commands.edits  # noqa: F401 (registers the edits' stages)
import gcm_edit.commands.export_write  # noqa: F401
import gcm_edit.commands.learned_judge  # noqa: F401
import gcm_edit.commands.stages  # noqa: F401
from gcm_edit.inputs.recipe import Directive
from gcm_edit.keys import StageConfig
from gcm_edit.model.generation import Decoding
from gcm_edit.steering.learned_edit import EditObjective
from gcm_edit.steering.scales import ScaleObjective

DECODING = Decoding(max_new_tokens=64, stop=("Q:",), temperature=0.7, seed=3)
DIRECTIVE = Directive(original="Answer.", contrast="Answer in verse.")
HEADS = [(0, 1), (2, 3)]
EDIT_GOAL = EditObjective(
    rank=4, lr=0.01, steps=80, kl_target=0.5, lambda_f=1.0, seed=0, snapshot_every=40,
    neutral_prompts=8,
)  # fmt: skip
SCALE_GOAL = ScaleObjective(
    alpha=1.0, lambda_f=1.0, lambda_m=0.5, lr=0.05, steps=40, learn_head_scale=False, seed=0,
    kl_target=0.5, init_c=(1.0, 1.0), snapshot_every=10,
)  # fmt: skip
# One plausible value per field of every stage config: a new stage or field fails below until
# it is listed here, so it is walked too.
EXAMPLES: dict[str, dict[str, Any]] = {
    "PairsStage": dict(
        judge="verse",
        training=[["q", [{"role": "user", "content": "q"}], [{"role": "user", "content": "q!"}]]],
        decoding=DECODING,
        prefill={"contrast": "Verse:"},
        generation_batch=8,
    ),
    "DeltasStage": dict(pairs="p", batch_size=8),
    "ScoresStage": dict(
        pairs="p",
        method="attribution",
        positions="response",
        seed=0,
        precision="32-true",
        batch_size=8,
        head_batch=4,
        devices=1,
        strategy="auto",
        activation_checkpointing=True,
    ),  # fmt: skip
    "CollateralStage": dict(scores="s", intervention="add", heads=HEADS, batch_size=8),
    "AnswersStage": dict(
        questions=["a?", "b?"],
        decoding=DECODING,
        plan="f",
        directive=DIRECTIVE,
        gguf=None,
        generation_batch=8,
    ),  # fmt: skip
    "MeasuredStage": dict(
        questions=["a?"],
        texts=["x"],
        judge=["http://judge", "m"],
        reference="r",
        relevance={"others": 4},
        batch_size=8,
    ),  # fmt: skip
    "ContinuationsStage": dict(generation_batch=8),
    "RetentionStage": dict(base="b", model="m", plan=None, continuations="c", batch_size=8),
    "TeacherStage": dict(
        model="m",
        questions=["a?"],
        directive=DIRECTIVE.model_dump(),
        prefill={},
        chat_template="{{ x }}",
        decoding=DECODING,
        candidates=4,
        generation_batch=8,
        seed=0,
        judge="verse",
        fluency={"max_ppl": 40.0},
        relevance={"min_pmi": 0.5},
        require_relevance=True,
    ),  # fmt: skip
    "DistilledStage": dict(
        teacher="t",
        steered=None,
        start="s",
        heads=HEADS,
        objective=EDIT_GOAL,
        batch=4,
        on_policy_steps=0,
        self_steps=0,
        decoding=DECODING,
        generation_batch=8,
    ),  # fmt: skip
    "ScalesStage": dict(
        scores="s", positions="response", candidates=HEADS, objective=SCALE_GOAL, batch_size=8
    ),
    "LearnedJudgeStage": dict(without="a", with_directive="b", reader="m", layer=15),
    "VerificationStage": dict(
        files={"model.safetensors": "ab"}, model="m", prompts=[[1, 2, 3]], runtime="transformers"
    ),
}
EXAMPLES["SteeredAnswersStage"] = EXAMPLES["TeacherStage"] | {"plan": "f"}
EXAMPLES["ConceptFirstStage"] = EXAMPLES["MeasuredStage"]
STAGES = {cls.__name__: cls for cls in StageConfig.stages}


def _nested(value: Any) -> Iterator[tuple[str, Any]]:
    """Each field of a dataclass or model changed on its own."""
    if dataclasses.is_dataclass(value):
        names, rebuild = [f.name for f in dataclasses.fields(value)], dataclasses.replace
    else:
        names = list(type(value).model_fields)

        def rebuild(model, **update):
            return model.model_copy(update=update)

    for name in names:
        for path, other in _others(getattr(value, name)):
            yield f".{name}{path}", rebuild(value, **{name: other})


def _sequence(value: list | tuple) -> Iterator[tuple[str, Any]]:
    if isinstance(value, tuple):
        yield "", (*value, value[0] if value else "x")
        return
    yield "", value[:-1] if value else ["x"]
    if len(value) > 1:
        yield "[order]", value[::-1]


SCALARS = {
    bool: lambda v: not v,
    int: lambda v: v + 1,
    float: lambda v: v + 1,
    str: lambda v: v + "x",
    type(None): lambda _v: "x",
    dict: lambda v: {**v, "extra": "x"},
}


def _others(value: Any) -> Iterator[tuple[str, Any]]:
    """(path, a different value) for `value` and, inside a dataclass or model, each field."""
    if dataclasses.is_dataclass(value) or isinstance(value, BaseModel):
        yield from _nested(value)
    elif isinstance(value, list | tuple):
        yield from _sequence(value)
    elif type(value) in SCALARS:
        yield "", SCALARS[type(value)](value)
    else:
        raise TypeError(f"no variation for {type(value).__name__}: extend _others")


def _cases() -> Iterator[tuple[str, str]]:
    for name, example in EXAMPLES.items():
        for field in example:
            yield name, field


def test_every_stage_and_field_has_an_example():
    assert set(STAGES) == set(EXAMPLES)
    for name, cls in STAGES.items():
        assert set(cls.model_fields) == set(EXAMPLES[name]), name


def test_the_walk_reaches_nested_fields():
    """Decoding, objectives and directives are changed field by field, not as one value: 68
    fields of 12 stages gave 108 changes when this was written."""
    walked = sum(len(list(_others(EXAMPLES[n][f]))) for n, f in _cases())
    nested = len(dataclasses.fields(Decoding)) + len(dataclasses.fields(EditObjective))
    assert walked >= len(list(_cases())) + nested


@pytest.mark.parametrize(("stage", "field"), list(_cases()))
def test_changing_a_field_changes_the_key_unless_marked(stage, field):
    cls, example = STAGES[stage], EXAMPLES[stage]
    base = cls(**example)
    unkeyed = (cls.model_fields[field].json_schema_extra or {}).get("unkeyed")
    for path, other in _others(example[field]):
        changed = cls(**{**example, field: other})
        assert getattr(changed, field) != getattr(base, field), path
        if unkeyed is None:
            assert changed.key() != base.key(), f"{stage}.{field}{path} is not in the key"
        else:
            assert len(unkeyed) > 20, "say why this field cannot change the result"
            assert changed.key() == base.key(), f"{stage}.{field}{path} is marked unkeyed"
