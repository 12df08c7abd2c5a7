"""Teacher data for a distilled edit: the prompted model's good answers (best-of-n).

The teacher is the base model asked with the recipe's contrast directive (and its contrast
prefill, if any); the student is the edited model asked bare. Each question is answered
greedily first, then sampled a few more times while no answer is good yet; an answer is kept
when `keep` (the project's judges: concept ∧ fluent ∧ relevant) accepts it, so the student
learns from what the prompted model does at its best, not from its failures.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, replace

from gcm_edit.inputs.prompts import chat_messages, encode_prompts, prefill_ids
from gcm_edit.inputs.recipe import Recipe
from gcm_edit.model.generation import Decoding, decode, generate

SAMPLE_TEMPERATURE = 0.8  # candidates after the greedy one
# Judged answer sets (teacher, steered, the student's own) are generated this many rows a
# batch whatever --generation-batch: a sample's draws depend on its batch, so a seed means
# the same answers on every machine and setting.
SAMPLE_BATCH = 32
SEED_STRIDE = 1000  # sample i of seed s draws from stream s·SEED_STRIDE + i (mod 2⁶⁴)


@dataclass
class TeacherExample:
    question: str
    student_prompt: list[int]  # the question asked bare
    teacher_prompt: list[int]  # asked with the contrast directive
    response: list[int]  # prefill (if any) + the teacher's continuation
    forced: int  # leading response tokens the teacher was given, not chose (the prefill)
    text: str
    candidate: int  # 0: the greedy answer, i > 0: the i-th sample


@dataclass
class TeacherSet:
    examples: list[TeacherExample]
    n_questions: int
    candidates: int  # answers generated in all
    greedy_kept: int  # questions whose greedy answer was already good

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> TeacherSet:
        return cls(**{**data, "examples": [TeacherExample(**e) for e in data["examples"]]})


def _best_of(
    model,
    tokenizer,
    prompts: list[list[int]],
    questions: list[str],
    decoding: Decoding,
    n_candidates: int,
    keep: Callable[[list[str], list[str]], list[bool]],
    batch_size: int,
    seed: int,
    who: str,
    prefill: list[int],
    steer: Callable[[], AbstractContextManager] = nullcontext,
) -> tuple[dict[int, tuple[list[int], str, int]], int]:
    """({question index: (prefill + answer ids, its text, candidate)} of the first good
    answer of each, answers generated): greedy, then samples at SAMPLE_TEMPERATURE from
    `seed`'s streams while no answer is good, up to `n_candidates` in all. `steer()` is
    entered while generating only: the judges read the unedited model."""
    chosen: dict[int, tuple[list[int], str, int]] = {}
    generated = 0
    for candidate in range(n_candidates):
        todo = [i for i in range(len(questions)) if i not in chosen]
        if not todo:
            break
        sampling = replace(
            decoding, temperature=SAMPLE_TEMPERATURE, seed=(seed * SEED_STRIDE + candidate) % 2**64
        )
        with steer():
            responses = generate(
                model,
                tokenizer,
                [prompts[i] + prefill for i in todo],
                sampling if candidate else decoding,
                batch_size,
                f"{who} ({'greedy' if not candidate else f'sample {candidate}'})",
            )
        responses = [prefill + r for r in responses]
        texts = decode(tokenizer, responses)
        generated += len(todo)
        verdicts = keep([questions[i] for i in todo], texts)
        for i, response, text, good in zip(todo, responses, texts, verdicts, strict=True):
            if good and response:
                chosen[i] = (response, text, candidate)
    return chosen, generated


def _student_prompts(tokenizer, questions: list[str]) -> list[list[int]]:
    return encode_prompts(tokenizer, [chat_messages(q, None, "original") for q in questions])


def _teacher_set(examples: list[TeacherExample], n_questions: int, generated: int) -> TeacherSet:
    greedy = sum(e.candidate == 0 for e in examples)
    return TeacherSet(examples, n_questions, generated, greedy)


def build_teacher_set(
    model,
    tokenizer,
    recipe: Recipe,
    questions: list[str],
    decoding: Decoding,
    n_candidates: int,
    keep: Callable[[list[str], list[str]], list[bool]],
    batch_size: int,
    seed: int = 0,
) -> TeacherSet:
    """Best of up to `n_candidates` answers per question (greedy, then samples from `seed`'s
    streams), judged by `keep(questions, texts)`; questions with no good answer are left
    out. The greedy answers do not depend on `seed`."""
    student = _student_prompts(tokenizer, questions)
    if recipe.directive is None:  # explicit pairs: the prefill alone makes the teacher
        teacher = student
    else:
        conversations = [chat_messages(q, recipe.directive, "contrast") for q in questions]
        teacher = encode_prompts(tokenizer, conversations)
    prefill = prefill_ids(tokenizer, recipe)["contrast"]
    chosen, generated = _best_of(
        model, tokenizer, teacher, questions, decoding, n_candidates, keep, batch_size, seed,
        "teacher answers", prefill,
    )  # fmt: skip
    examples = [
        TeacherExample(questions[i], student[i], teacher[i], r, len(prefill), t, c)
        for i, (r, t, c) in sorted(chosen.items())
    ]
    return _teacher_set(examples, len(questions), generated)


def build_steered_set(
    model,
    tokenizer,
    questions: list[str],
    decoding: Decoding,
    n_candidates: int,
    keep: Callable[[list[str], list[str]], list[bool]],
    batch_size: int,
    seed: int,
    steer: Callable[[], AbstractContextManager],
    who: str = "steered answers",
) -> TeacherSet:
    """The same best-of-n from `model` under `steer()` (a plan's hooks: the
    mean-difference-steered model), asked bare. Every answer token is forced: the student
    learns to write these answers (one-hot targets), where the prompted model may write none
    (sycophancy: 3% prompted, 39% steered)."""
    student = _student_prompts(tokenizer, questions)
    chosen, generated = _best_of(
        model, tokenizer, student, questions, decoding, n_candidates, keep, batch_size, seed,
        who, [], steer,
    )  # fmt: skip
    examples = [
        TeacherExample(questions[i], student[i], student[i], r, len(r), t, c)
        for i, (r, t, c) in sorted(chosen.items())
    ]
    return _teacher_set(examples, len(questions), generated)
