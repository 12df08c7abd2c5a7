"""Concept recipes: the directive pair, the question splits and how the concept is judged.

Recipes are YAML validated by pydantic before any model is loaded, so a typo costs a second,
not a model load.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    model_validator,
)

from gcm_edit.inputs.datafiles import MAX_TEXT_CHARS

BUILTIN_DIR = Path(__file__).resolve().parents[1] / "recipes"
# An answer of 32k tokens outruns every context window this tool supports: a typo, not a wish.
MAX_NEW_TOKENS = 32768
# A directive, a prefill or a base prompt's piece is an instruction or a few opening words;
# with a question (MAX_TEXT_CHARS) the longest prompt stays inside an 8k-token context
# (SmolLM2's), where a 70k-character directive asked for 39 GB.
MAX_CUE_CHARS = 2_000
QUESTION_FIELDS = ("train", "validation", "heldout", "heldout_forms", "distill")
# The offline judges a recipe may name: the built-in ones (gcm_edit/judges/), then those
# added by `gcm_edit.judges.register_judge` (which appends here: inputs cannot import judges).
# "learned": a probe fitted on the model's own answers with and without the directive
# (judges/learned.py), for a concept no rule decides.
LEARNED = "learned"
JUDGE_NAMES: list[str] = [
    "verse",
    "refusal",
    "critique",
    LEARNED,
    # the concept suite's rule judges (gcm_edit/judges/rules*.py)
    "praise",
    "french",
    "spanish",
    "capitals",
    "pirate",
    "early_modern",
    "emoji",
    "numbered_list",
    "one_sentence",
    "question_end",
    "ocean",
    "exclamation",
    "third_person",
]


class Directive(BaseModel):
    """The only difference between an original and a contrast prompt."""

    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "user"] = "user"
    placement: Literal["prefix", "suffix"] = "suffix"
    original: str = Field(min_length=1, max_length=MAX_CUE_CHARS)
    contrast: str = Field(min_length=1, max_length=MAX_CUE_CHARS)


class BasePrompt(BaseModel):
    """How to ask a model with no chat template: plain text with a `{question}` slot and a
    `{cue}` slot. The cue is `bare` for questions asked as users will (evaluation,
    verification) and the directive's side (`original`, `contrast`) for training prompts."""

    model_config = ConfigDict(extra="forbid")
    template: str = Field(min_length=1, max_length=MAX_CUE_CHARS)
    bare: str = Field("", max_length=MAX_CUE_CHARS)
    original: str | None = Field(None, max_length=MAX_CUE_CHARS)
    contrast: str | None = Field(None, max_length=MAX_CUE_CHARS)
    # A base model does not end its turn: answers end before the first of these strings.
    stop: list[Annotated[str, Field(min_length=1, max_length=MAX_CUE_CHARS)]] = []

    @model_validator(mode="after")
    def _slots(self) -> BasePrompt:
        for slot in ("{question}", "{cue}"):
            if self.template.count(slot) != 1:
                raise ValueError(
                    f"template: needs {slot} exactly once, e.g. 'Q: {{question}}\n{{cue}}'"
                )
        return self

    def pieces(self) -> list[str]:
        """The template split around its slots: text, slot, text, slot, text."""
        first, second = sorted(("{question}", "{cue}"), key=self.template.index)
        head, rest = self.template.split(first)
        middle, tail = rest.split(second)
        return [head, first, middle, second, tail]


class Fluency(BaseModel):
    """Fluent = long enough, few repeated word n-grams, plausible text under the base model.

    Defaults were set on SmolLM2-135M's own prompted poems (repeated-bigram rate 0.13-0.38)
    against loops (0.46-0.92) and word salad (perplexity ~1700 vs 3-40 for real answers).
    """

    model_config = ConfigDict(extra="forbid")
    ngram: int = Field(default=2, ge=1)
    max_repeated_rate: float = Field(default=0.35, ge=0.0, le=1.0)
    max_perplexity: float = Field(default=100.0, gt=1.0)
    min_words: int = Field(default=8, ge=1)
    # Degenerate text the bigram rate misses: "mine, mine, Mine Mine" (a run of one word),
    # one content word taking over an answer, the same line again and again.
    max_word_run: int = Field(default=2, ge=1)
    max_word_share: float = Field(default=0.25, gt=0.0, le=1.0)
    max_repeated_lines: float = Field(default=0.34, ge=0.0, le=1.0)
    # What readers call degenerate and the figures above passed (tests/evaluation/
    # fluency_labels.jsonl, bench/fluency.py): a content word echoed within the next three
    # ("a life of a life"), the same word again within two ("clever and clever", "night's
    # night's"), runs of two-word fragments ("a fire, a flame, a light, a spark").
    max_echo_rate: float = Field(default=0.15, ge=0.0, le=1.0)
    max_close_repeats: int = Field(default=0, ge=0)
    min_clause_words: float = Field(default=3.5, ge=0.0)


def _known_judge(name: str) -> str:
    if name not in JUDGE_NAMES:
        raise ValueError(f"unknown judge {name!r}; known judges: {', '.join(JUDGE_NAMES)}")
    return name


def _non_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("empty text")
    return text


NonBlank = Annotated[
    str, Field(min_length=1, max_length=MAX_TEXT_CHARS), AfterValidator(_non_blank)
]
Cue = Annotated[str, Field(min_length=1, max_length=MAX_CUE_CHARS), AfterValidator(_non_blank)]


class Prefill(BaseModel):
    """Opening words of a training answer ("I'm sorry, but I can't help with that."): the
    model continues from them, they count as part of the response in M and δ, and the judge
    still decides which pairs are kept. Held-out questions are never prefilled."""

    model_config = ConfigDict(extra="forbid")
    original: Cue | None = None
    contrast: Cue | None = None


class PromptPair(BaseModel):
    """An explicit training pair: two requests that differ only in the concept."""

    model_config = ConfigDict(extra="forbid")
    original: NonBlank
    contrast: NonBlank


class TextColumn(BaseModel):
    """Questions read from a local jsonl/json/csv/parquet file (relative to the recipe)."""

    model_config = ConfigDict(extra="forbid")
    file: str = Field(min_length=1)
    column: str = "question"


class PairColumns(BaseModel):
    """Prompt pairs read from a local jsonl/json/csv/parquet file (relative to the recipe)."""

    model_config = ConfigDict(extra="forbid")
    file: str = Field(min_length=1)
    original: str = "original"  # column names
    contrast: str = "contrast"


Questions = Annotated[list[NonBlank], Field(min_length=1)] | TextColumn


class Recipe(BaseModel):
    """A concept. Training prompts come from a directive applied to questions, or explicit pairs.

    Validation and held-out prompts are asked bare (no directive) — what users of the steered
    model will do. File-backed lists are read when the recipe is loaded, so a Recipe always
    holds plain lists after `load_recipe`.
    """

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    description: str = Field(min_length=1)
    judge: Annotated[str, AfterValidator(_known_judge)]  # JUDGE_NAMES: checked when loaded
    # What an LLM judge (--judge-url) is asked about each answer; default from `description`.
    judge_question: str | None = None
    directive: Directive | None = None
    # For models with no chat template (or `--prompt-format base`).
    base_prompt: BasePrompt | None = None
    prefill: Prefill = Prefill()
    train: Questions | None = None
    pairs: Annotated[list[PromptPair], Field(min_length=1)] | PairColumns | None = None
    max_new_tokens: int = Field(default=96, ge=1, le=MAX_NEW_TOKENS)
    fluency: Fluency = Fluency()
    # Success = concept ∧ fluent ∧ relevant. False for concepts whose answers carry no
    # question content by nature (a refusal): relevance is then reported, not required.
    require_relevance: bool = True
    validation: Questions
    heldout: Questions
    # A second held-out split of other question forms (opinions, feelings, descriptions,
    # requests, comparisons, advice, short and long): never used for a choice; reported by
    # bench/distill.py beside `heldout`, since an edit can copy the prompt on one form only.
    heldout_forms: Questions | None = None
    # Unlabelled questions a distilled edit learns from (the prompted model answers them);
    # default: the training questions (original side of explicit pairs).
    distill: Questions | None = None
    # The YAML file and the data files it names (set by `load_recipe`): inputs no --out may
    # replace.
    _files: list[Path] = PrivateAttr(default_factory=list)

    @model_validator(mode="after")
    def _one_source_of_training_prompts(self) -> Recipe:
        # "field: message": load_recipe reports the field (and its line) like any other error
        if self.directive is None and self.pairs is None:
            raise ValueError("directive: missing (give a directive and train questions, or pairs)")
        if self.directive is not None and self.pairs is not None:
            raise ValueError("pairs: give either a directive (with train questions) or pairs")
        if self.directive is not None and self.train is None:
            raise ValueError("train: missing (a directive needs train questions)")
        if self.pairs is not None and self.train is not None:
            raise ValueError("train: only used with a directive (pairs are the training prompts)")
        if self.judge == LEARNED and self.directive is None:
            raise ValueError(
                f"judge: {LEARNED!r} learns from answers with and without the directive; "
                "give a directive and train questions"
            )
        base = self.base_prompt
        if self.directive is not None and base is not None:
            for side in ("original", "contrast"):
                if not getattr(base, side):
                    raise ValueError(
                        f"base_prompt: {side} cue missing (the recipe has a directive)"
                    )
        return self

    def for_base_model(self) -> Recipe:
        """This recipe asked through `base_prompt`: the directive's sides become the cues,
        carried as a system message that the base template puts in its `{cue}` slot."""
        base = self.base_prompt
        if base is None or self.directive is None:
            return self
        directive = Directive(role="system", original=base.original, contrast=base.contrast)
        return self.model_copy(update={"directive": directive})

    def distill_questions(self) -> list[str]:
        """Questions the prompted model answers for a distilled edit (after `load_recipe`)."""
        if self.distill is not None:
            return list(self.distill)
        if self.pairs is not None:
            return [pair.original for pair in self.pairs]
        return list(self.train)

    def files(self) -> list[Path]:
        """The recipe's own file and its data files, as loaded (empty for an in-memory one)."""
        return list(self._files)

    def llm_question(self) -> str:
        return (
            self.judge_question
            or f"Does this answer show the following concept? {self.description}"
        )

    def sha256(self) -> str:
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()
