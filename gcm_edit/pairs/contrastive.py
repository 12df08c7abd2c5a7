"""Stage 1: contrastive pairs — the model's own greedy answers under both directives."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from gcm_edit.console import progress
from gcm_edit.inputs.prompts import encode_prompts, prefill_ids, training_prompts
from gcm_edit.inputs.recipe import Recipe
from gcm_edit.judges import Judge, make_judge
from gcm_edit.model.generation import Decoding, decode, generate


@dataclass
class Pair:
    question: str
    prompt_orig: list[int]
    prompt_contrast: list[int]
    response_orig: list[int]
    response_contrast: list[int]
    text_orig: str
    text_contrast: str


@dataclass
class PairSet:
    """Kept pairs plus how often the model followed each directive."""

    pairs: list[Pair]
    n_questions: int
    contrast_adherence: float  # share of contrast answers that show the concept
    original_clean: float  # share of original answers that do not
    dropped: list[dict] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> PairSet:
        return cls(**{**data, "pairs": [Pair(**p) for p in data["pairs"]]})


def judged(judge: Judge, texts: list[str], side: str) -> list[bool]:
    """The judge's verdict on each answer, behind a progress bar (an LLM judge is slow)."""
    return [judge(text) for text in progress(texts, f"pairs: judging {side} answers")]


def build_pairs(
    model,
    tokenizer,
    recipe: Recipe,
    n_train: int | None = None,
    judge: Judge | None = None,
    decoding: Decoding = Decoding(),  # noqa: B008 (frozen)
    batch_size: int = 8,
) -> PairSet:
    """Both answers to the first `n_train` training items, each starting with the recipe's
    prefill for its side (if any); a pair is kept when `judge` (default: the recipe's offline
    judge) finds the concept in the contrast answer and not the original."""
    training = training_prompts(recipe, n_train)
    judge = judge or make_judge(recipe.judge)
    questions = [label for label, _, _ in training]
    prompts = {
        side: encode_prompts(tokenizer, [item[i] for item in training], f"pairs: {side} prompts")
        for i, side in ((1, "original"), (2, "contrast"))
    }
    prefill = prefill_ids(tokenizer, recipe)  # the response starts with it, the model goes on
    responses = {
        side: [
            prefill[side] + r
            for r in generate(
                model,
                tokenizer,
                [p + prefill[side] for p in ids],
                decoding,
                batch_size,
                f"pairs: {side} answers",
            )
        ]
        for side, ids in prompts.items()
    }
    texts = {side: decode(tokenizer, r) for side, r in responses.items()}
    has_concept = {side: judged(judge, texts[side], side) for side in texts}
    kept, dropped = [], []
    for i, question in enumerate(questions):
        pair = Pair(
            question,
            prompts["original"][i],
            prompts["contrast"][i],
            responses["original"][i],
            responses["contrast"][i],
            texts["original"][i],
            texts["contrast"][i],
        )
        if has_concept["contrast"][i] and not has_concept["original"][i]:
            kept.append(pair)
        else:
            dropped.append({"question": question, "contrast": pair.text_contrast})
    n = len(questions)
    return PairSet(
        kept,
        n,
        sum(has_concept["contrast"]) / n,
        1 - sum(has_concept["original"]) / n,
        dropped,
    )
