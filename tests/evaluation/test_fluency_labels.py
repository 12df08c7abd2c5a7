"""The fluency judge agrees with readers: on the labelled steered answers (all three
concepts, several plans), at least 90% of what it calls fluent, readers call fluent too.

The judge is the package's (`fluency_figures` + `passes` with each recipe's limits); the
same labels make the table of bench/fluency.py.
"""

from __future__ import annotations

import json
from pathlib import Path

from gcm_edit.evaluation.fluency import LEGACY_LIMITS, fluency_figures, passes
from gcm_edit.inputs.recipe_files import load_recipe

LABELS = Path(__file__).with_name("fluency_labels.jsonl")
MIN_PRECISION = 0.9
MIN_RECALL = 0.5  # a judge that calls nothing fluent would be precise and useless


def load_labels() -> list[dict]:
    return [json.loads(line) for line in LABELS.read_text().splitlines() if line.strip()]


def verdicts(labels: list[dict], legacy: bool = False) -> list[bool]:
    """The judge's "fluent" for each labelled answer, with its recipe's limits (`legacy`: the
    limits from before the reader-labelled checks)."""
    limits = {c: load_recipe(c).fluency for c in {row["concept"] for row in labels}}
    if legacy:
        limits = {c: f.model_copy(update=LEGACY_LIMITS) for c, f in limits.items()}
    judged = []
    for row in labels:
        fluency = limits[row["concept"]]
        judged.append(passes(fluency_figures(row["answer"], row["perplexity"], fluency), fluency))
    return judged


def agreement(labels: list[dict], judged: list[bool]) -> dict[str, float]:
    """Precision and recall of the judge's "fluent" against the readers' labels."""
    agreed = sum(j and row["fluent"] for j, row in zip(judged, labels, strict=True))
    fluent = sum(row["fluent"] for row in labels)
    return {"precision": agreed / max(sum(judged), 1), "recall": agreed / max(fluent, 1)}


def test_labels_cover_the_concepts_and_plans():
    labels = load_labels()
    assert len(labels) >= 150
    assert {row["concept"] for row in labels} == {"verse", "refusal", "sycophancy"}
    assert len({row["plan"] for row in labels}) >= 2
    assert len({row["id"] for row in labels}) == len(labels)
    assert all(isinstance(row["fluent"], bool) and row["answer"] for row in labels)


def test_judge_precision_on_reader_labels():
    labels = load_labels()
    figures = agreement(labels, verdicts(labels))
    assert figures["precision"] >= MIN_PRECISION, figures
    assert figures["recall"] >= MIN_RECALL, figures


def test_the_judge_before_the_labels_was_far_less_precise():
    """The reader-labelled checks are what the precision comes from (bench/fluency.py)."""
    labels = load_labels()
    before = agreement(labels, verdicts(labels, legacy=True))
    now = agreement(labels, verdicts(labels))
    assert before["precision"] < now["precision"] - 0.2, (before, now)
