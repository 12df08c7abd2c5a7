"""Stage 5: answer held-out questions (no directive) and judge each answer: concept present,
fluent, and still about the question. Success = concept ∧ fluent ∧ relevant (relevance only
reported where the recipe says its answers are generic by nature: `require_relevance`)."""

from __future__ import annotations

import math
import statistics
from contextlib import nullcontext
from pathlib import Path

from pydantic import BaseModel, Field

from gcm_edit.evaluation.fluency import fluency_figures, passes, perplexities
from gcm_edit.evaluation.rates import Rate
from gcm_edit.evaluation.relevance import MIN_PMI, relevance_pmi
from gcm_edit.inputs.prompts import bare_prompts, chat_messages, encode_prompts
from gcm_edit.inputs.recipe import Directive, Recipe
from gcm_edit.judges import Judge
from gcm_edit.model.generation import Decoding, decode, eos_ids, generate
from gcm_edit.model.llamacpp import LlamaCpp
from gcm_edit.steering.plan import SteeringPlan
from gcm_edit.tables import Column, ResultTable

PROMPTED = "prompted"  # the prompting reference: the base model asked with the directive


class Evaluation(BaseModel):
    """Judged answers to one split. The manifest keeps the figures; `answers` stays out."""

    n: int
    success: Rate  # concept present ∧ fluent ∧ relevant (if the recipe requires it)
    concept: Rate
    fluent: Rate
    relevant: Rate
    repeated_ngram_rate: float  # mean over answers
    median_perplexity: float  # under the base model
    median_pmi: float  # relevance, nats per answer token (relevance.py)
    grade: float  # mean of the judge's graded figure (e.g. rhyme share for verse)
    grade_label: str
    answers: list[dict] = Field(default_factory=list, exclude=True)


def metrics_table(title: str, metrics: dict[str, Evaluation]) -> ResultTable:
    """One row per model or plan, e.g. base vs steered on the held-out questions; every rate
    with its 95% interval."""
    grade = next(iter(metrics.values())).grade_label
    columns = [
        Column("model", lambda row: row[0]),
        Column("success", lambda row: row[1].success),
        Column("concept", lambda row: row[1].concept),
        Column("fluent", lambda row: row[1].fluent),
        Column("relevant", lambda row: row[1].relevant),
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
    directive: Directive | None = None,
) -> list[str]:
    """Greedy answers to bare questions, optionally from the hooked steered model; with a
    `directive`, asked with its contrast side (the prompting reference)."""
    prompts = question_prompts(tokenizer, questions, directive)
    device = next(model.parameters()).device
    hooks = plan.apply(model, device) if plan is not None else nullcontext()
    with hooks:
        return decode(tokenizer, generate(model, tokenizer, prompts, decoding, batch_size, label))


def question_prompts(
    tokenizer, questions: list[str], directive: Directive | None = None
) -> list[list[int]]:
    """Questions asked bare, or with `directive`'s contrast side (the prompting reference)."""
    if directive is None:
        return bare_prompts(tokenizer, questions)
    conversations = [chat_messages(q, directive, "contrast") for q in questions]
    return encode_prompts(tokenizer, conversations)


def answer_questions_gguf(
    path: Path,
    tokenizer,
    questions: list[str],
    decoding: Decoding,
    label: str = "llama.cpp",
    directive: Directive | None = None,
) -> list[str]:
    """`answer_questions` with llama.cpp running the GGUF at `path` (exact settings): the
    same prompt ids, the same decoding, the same tokenizer decoding the answers. Answers end
    at the tokenizer's EOS and those of the generation_config.json beside the file."""
    from transformers import GenerationConfig

    prompts = question_prompts(tokenizer, questions, directive)
    llm = LlamaCpp(path, n_ctx=max(map(len, prompts)) + decoding.max_new_tokens + 8)
    beside = (path.parent / "generation_config.json").is_file()
    configured = GenerationConfig.from_pretrained(path.parent) if beside else None
    stops = eos_ids(configured, tokenizer)
    return decode(tokenizer, llm.answers(prompts, decoding, stops, tokenizer, label))


def measure_answers(
    base_model,
    tokenizer,
    judge: Judge,
    questions: list[str],
    texts: list[str],
    batch_size: int = 8,
    concept_first: bool = False,
) -> list[dict]:
    """What judging needs a model or a judge for, per answer: perplexity and relevance PMI
    under `base_model`, the judge's concept verdict and grade. Thresholds are not applied
    here, so a change of fluency or relevance limits re-judges from these figures alone.
    With `concept_first`, perplexity and PMI are measured only where the judge sees the
    concept (None elsewhere): enough to decide success, all that candidate answers need."""
    concept = [bool(judge(text)) for text in texts]
    wanted = [i for i, present in enumerate(concept) if present or not concept_first]
    ppl = perplexities(base_model, tokenizer, [texts[i] for i in wanted], batch_size)
    pmi = relevance_pmi(base_model, tokenizer, questions, texts, batch_size, wanted)
    figures = dict(zip(wanted, zip(ppl, pmi, strict=True), strict=True))
    rows = []
    for i, text in enumerate(texts):
        ppl_i, pmi_i = figures.get(i, (None, None))
        rows.append(
            {"perplexity": ppl_i, "pmi": pmi_i, "concept": concept[i], "grade": judge.grade(text)}
        )
    return rows


def evaluate_answers(
    recipe: Recipe, label: str, questions: list[str], texts: list[str], measured: list[dict]
) -> Evaluation:
    """Concept (as measured), fluency (the recipe's limits) and relevance (PMI > MIN_PMI) of
    each answer; `label` names the judge's grade."""
    rows = []
    for question, text, m in zip(questions, texts, measured, strict=True):
        # unmeasured (concept_first, no concept): NaN figures, so neither fluent nor relevant
        ppl, pmi = (math.nan if m[k] is None else m[k] for k in ("perplexity", "pmi"))
        figures = fluency_figures(text, ppl, recipe.fluency)
        concept, fluent = bool(m["concept"]), passes(figures, recipe.fluency)
        relevant = pmi > MIN_PMI
        rows.append(
            {
                "question": question,
                "answer": text,
                "concept": concept,
                "fluent": fluent,
                "relevant": relevant,
                "success": concept and fluent and (relevant or not recipe.require_relevance),
                "pmi": round(pmi, 4),
                **{k: round(v, 4) for k, v in figures.items()},
            }
        )
    return Evaluation(
        n=len(rows),
        success=Rate.of([r["success"] for r in rows]),
        concept=Rate.of([r["concept"] for r in rows]),
        fluent=Rate.of([r["fluent"] for r in rows]),
        relevant=Rate.of([r["relevant"] for r in rows]),
        repeated_ngram_rate=statistics.fmean(r["repeated_ngram_rate"] for r in rows),
        median_perplexity=_median([m["perplexity"] for m in measured]),
        median_pmi=_median([m["pmi"] for m in measured]),
        grade=statistics.fmean(m["grade"] for m in measured),
        grade_label=label,
        answers=rows,
    )


def _median(values: list[float | None]) -> float:
    """Median of the measured values (NaN when none was measured)."""
    seen = [v for v in values if v is not None]
    return statistics.median(seen) if seen else math.nan


def judge_answers(
    base_model,
    tokenizer,
    recipe: Recipe,
    judge: Judge,
    questions: list[str],
    texts: list[str],
    batch_size: int = 8,
) -> Evaluation:
    """Concept (the recipe's judge), fluency and relevance (both under `base_model`)."""
    measured = measure_answers(base_model, tokenizer, judge, questions, texts, batch_size)
    return evaluate_answers(recipe, judge.label, questions, texts, measured)
