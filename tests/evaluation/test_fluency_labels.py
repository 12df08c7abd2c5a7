"""The fluency judge agrees with readers: on the labelled steered answers (all three
concepts, several plans), at least 90% of what it calls fluent, readers call fluent too."""

from __future__ import annotations

from fluency import agreement, load_labels, verdicts

MIN_PRECISION = 0.9
MIN_RECALL = 0.5  # a judge that calls nothing fluent would be precise and useless


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
