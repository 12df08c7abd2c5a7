"""How long each part of the evaluation takes on the default model, uncached, and what the
relevance threshold separates: PMI of the base model's own answers vs the same answers
shuffled onto other questions.

    .venv/bin/python bench/evaluation.py [--n N]

Prints two tables, then how much a perplexity pass pads in arrival and in length order.
Judging is timed on every answer and concept first (as the teacher's candidates are judged).
Pairs, δ and scores come from the run cache (a prior `gcm-edit export` fills it); everything
timed here is computed afresh.
"""

from __future__ import annotations

import argparse
import statistics
import time


def timed_parts(run, plan, questions: list[str], generation: int, batch: int) -> tuple:
    """Each part of the evaluation, timed once, uncached: (part, seconds) rows, the base and
    steered answers, and the factual capability; `generation` sequences per generation,
    `batch` per forward pass."""
    from gcm_edit.evaluation.answers import answer_questions, judge_answers, measure_answers
    from gcm_edit.evaluation.capability import FACTUAL_DECODING, Capability
    from gcm_edit.evaluation.fluency import perplexities
    from gcm_edit.evaluation.relevance import relevance_pmi
    from gcm_edit.evaluation.retention import measure_retention
    from gcm_edit.inputs.factual import factual_items
    from gcm_edit.steering.constraint import base_continuations

    model, tok, recipe = run.model, run.tokenizer, run.recipe
    timings: list[tuple[str, float]] = []

    def timed(name: str, job):
        start = time.perf_counter()
        value = job()
        timings.append((name, time.perf_counter() - start))
        return value

    def answer(plan_=None, directive=None, qs=questions, decoding=run.decoding):
        return answer_questions(model, tok, qs, decoding, generation, plan_, "bench", directive)

    base = timed(f"answers, base ({len(questions)})", answer)
    steered = timed(f"answers, steered ({len(questions)})", lambda: answer(plan))
    prompted = timed(
        f"answers, prompted ({len(questions)})", lambda: answer(None, recipe.directive)
    )
    timed("judging: perplexity (steered)", lambda: perplexities(model, tok, steered, batch))
    timed(
        "judging: relevance PMI (steered)",
        lambda: relevance_pmi(model, tok, questions, steered, batch),
    )
    timed(
        "judging: all (steered)",
        lambda: judge_answers(model, tok, recipe, run.judge, questions, steered, batch),
    )
    for first in (False, True):  # the teacher's candidates are judged concept first
        timed(
            f"judging: {'concept first' if first else 'all'} (prompted)",
            lambda first=first: measure_answers(
                model, tok, run.judge, questions, prompted, batch, first
            ),
        )
    continuations = timed(
        "retention: base continuations", lambda: base_continuations(model, tok, generation)
    )
    timed(
        "retention: KL ×3 + perplexity",
        lambda: measure_retention(model, tok, plan, None, continuations, batch),
    )
    items = factual_items()
    factual = [item.question for item in items]
    facts = {
        name: timed(
            f"capability: factual answers, {name} ({len(items)})",
            lambda p=p: answer(p, None, factual, FACTUAL_DECODING),
        )
        for name, p in (("base", None), ("steered", plan))
    }
    capability = Capability.judge(items, facts["base"], facts["steered"])
    return timings, base, steered, capability


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=None, help="held-out questions (default all)")
    args = parser.parse_args()

    from rich.console import Console
    from rich.table import Table

    from gcm_edit.commands.export_settings import ExportSettings
    from gcm_edit.commands.steering_run import SteeringRun
    from gcm_edit.console import quiet_libraries
    from gcm_edit.evaluation.relevance import MIN_PMI, relevance_pmi

    quiet_libraries()
    s = ExportSettings(edit="mean-diff")  # the α·δ plan (a distilled export's start plan)
    run = SteeringRun(s)
    plan = run.plan(s.positions, s.alpha, s.k_percent, s.method, s.edit.intervention)
    model, tok = run.model, run.tokenizer
    questions = run.recipe.heldout[: args.n]
    generation, batch = s.generation_batch, s.batch_size
    timings, base, steered, capability = timed_parts(run, plan, questions, generation, batch)

    title = f"generation batch {generation}, forward batch {batch}"
    table = Table(title=f"Evaluation parts on {run.model_ref.name} (uncached, {title})")
    table.add_column("part")
    table.add_column("seconds", justify="right")
    for name, seconds in timings:
        table.add_row(name, f"{seconds:.1f}")
    Console().print(table)

    half = len(questions) // 2
    shuffled = base[half:] + base[:half]  # each answer moved onto another question
    pmi = {
        "base answers, own question": relevance_pmi(model, tok, questions, base, batch),
        "base answers, shuffled": relevance_pmi(model, tok, questions, shuffled, batch),
        "steered answers, own question": relevance_pmi(model, tok, questions, steered, batch),
    }
    table = Table(title=f"Relevance: PMI per answer token (nats); relevant = PMI > {MIN_PMI}")
    for column in ("answers", "median PMI", "share > 0", f"share > {MIN_PMI}"):
        table.add_column(column, justify="left" if column == "answers" else "right")
    for name, values in pmi.items():
        shares = [f"{sum(v > t for v in values) / len(values):.0%}" for t in (0, MIN_PMI)]
        table.add_row(name, f"{statistics.median(values):.3f}", *shares)
    Console().print(table)
    Console().print(f"capability: {capability.base} base, {capability.steered} steered")
    Console().print(padding(tok, steered, batch))


def padding(tok, texts: list[str], batch: int) -> str:
    """Tokens a perplexity pass of `texts` computes, padded in arrival order and in length
    order (model/batches.length_batches), against the tokens it needs."""
    from gcm_edit.model.batches import length_batches

    lengths = [1 + len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts]
    arrival = [list(range(i, min(i + batch, len(texts)))) for i in range(0, len(texts), batch)]
    padded = {
        name: sum(len(b) * max(lengths[i] for i in b) for b in batches)
        for name, batches in (("arrival", arrival), ("length", length_batches(lengths, batch)))
    }
    need = sum(lengths)
    return (
        f"perplexity pass of the steered answers: {need} tokens needed; padded in arrival order "
        f"+{padded['arrival'] / need - 1:.0%}, in length order +{padded['length'] / need - 1:.0%}"
    )


if __name__ == "__main__":
    main()
