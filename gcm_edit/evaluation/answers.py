"""Stage 5: answer held-out questions (no directive) and judge concept ∧ fluency."""

from __future__ import annotations

import statistics
from contextlib import nullcontext

from pydantic import BaseModel, Field

from gcm_edit.evaluation.fluency import is_fluent, perplexities, repeated_ngram_rate
from gcm_edit.inputs.prompts import bare_prompts
from gcm_edit.inputs.recipe import Recipe
from gcm_edit.judges import Judge
from gcm_edit.model.generation import Decoding, decode, generate
from gcm_edit.steering.plan import SteeringPlan
from gcm_edit.tables import Column, ResultTable


class Evaluation(BaseModel):
    """Judged answers to one split. The manifest keeps the figures; `answers` stays out."""

    n: int
    success_rate: float  # concept present ∧ fluent
    concept_rate: float
    fluent_rate: float
    repeated_ngram_rate: float  # mean over answers
    median_perplexity: float  # under the base model
    grade: float  # mean of the judge's graded figure (e.g. rhyme share for verse)
    grade_label: str
    answers: list[dict] = Field(default_factory=list, exclude=True)


def metrics_table(title: str, metrics: dict[str, Evaluation]) -> ResultTable:
    """One row per model or plan, e.g. base vs steered on the held-out questions."""
    grade = next(iter(metrics.values())).grade_label
    columns = [
        Column("model", lambda row: row[0]),
        Column("success (concept ∧ fluent)", lambda row: row[1].success_rate, ".0%"),
        Column("concept", lambda row: row[1].concept_rate, ".0%"),
        Column("fluent", lambda row: row[1].fluent_rate, ".0%"),
        Column("repeated bigrams", lambda row: row[1].repeated_ngram_rate, ".3f"),
        Column("median ppl", lambda row: row[1].median_perplexity, ".1f"),
        Column(grade, lambda row: row[1].grade, ".2f"),
    ]
    return ResultTable(title, columns, list(metrics.items()))


def answer_questions(
    model,
    tokenizer,
    questions: list[str],
    decoding: Decoding,
    batch_size: int,
    plan: SteeringPlan | None = None,
    label: str = "answering",
) -> list[str]:
    """Greedy answers to bare questions, optionally from the hooked steered model."""
    prompts = bare_prompts(tokenizer, questions)
    device = next(model.parameters()).device
    hooks = plan.apply(model, device) if plan is not None else nullcontext()
    with hooks:
        return decode(tokenizer, generate(model, tokenizer, prompts, decoding, batch_size, label))


def judge_answers(
    base_model, tokenizer, recipe: Recipe, judge: Judge, questions: list[str], texts: list[str]
) -> Evaluation:
    ppl = perplexities(base_model, tokenizer, texts)
    rows = []
    for question, text, perplexity in zip(questions, texts, ppl, strict=True):
        concept = judge(text)
        fluent = is_fluent(text, perplexity, recipe.fluency)
        rows.append(
            {
                "question": question,
                "answer": text,
                "concept": concept,
                "fluent": fluent,
                "success": concept and fluent,
                "perplexity": round(perplexity, 2),
                "repeated_ngram_rate": round(repeated_ngram_rate(text, recipe.fluency.ngram), 4),
            }
        )
    n = len(rows)
    return Evaluation(
        n=n,
        success_rate=sum(r["success"] for r in rows) / n,
        concept_rate=sum(r["concept"] for r in rows) / n,
        fluent_rate=sum(r["fluent"] for r in rows) / n,
        repeated_ngram_rate=statistics.fmean(r["repeated_ngram_rate"] for r in rows),
        median_perplexity=statistics.median(ppl),
        grade=statistics.fmean(judge.grade(t) for t in texts),
        grade_label=judge.label,
        answers=rows,
    )
