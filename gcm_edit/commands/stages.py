"""The run's cached stages, each described by what it computes from (gcm_edit/keys.py).

Batch sizes follow one rule: keyed where the stage picks tokens (a batch pads its rows, and a
near-tie in a greedy choice can flip with the float order), unkeyed where they only reorder
float sums. Every run folder is one model's (commands/run.py), so `model` names the model a
stage reads when it may be another run's (a base model measuring this one).
"""

from __future__ import annotations

from typing import Any

from gcm_edit.keys import StageConfig, unkeyed

FLOAT_ORDER = "batching reorders float sums only: tests/{} checks the result is the same"


class PairsStage(StageConfig):
    """The model's own answers to the training prompts, both sides, judged."""

    judge: str | list[str]
    training: list[Any]  # (question, original messages, contrast messages)
    decoding: Any  # model.generation.Decoding
    prefill: dict
    generation_batch: int


class DeltasStage(StageConfig):
    """Steering vectors δ (and the original runs' means) from the pairs."""

    pairs: str  # PairsStage key
    batch_size: int = unkeyed(8, FLOAT_ORDER.format("steering/test_deltas.py"))


class ScoresStage(StageConfig):
    """Head scores by one method, from the pairs (and δ)."""

    pairs: str
    method: str
    positions: str | None  # None: a method that reads no δ
    seed: int
    precision: str  # resolved: 32-true or bf16-mixed
    batch_size: int = unkeyed(8, FLOAT_ORDER.format("scoring/test_scoring.py"))
    head_batch: int = unkeyed(4, FLOAT_ORDER.format("scoring/test_methods.py"))
    devices: int = unkeyed(1, FLOAT_ORDER.format("scoring/test_ddp.py"))
    strategy: str = unkeyed("auto", FLOAT_ORDER.format("scoring/test_ddp.py"))
    activation_checkpointing: bool = unkeyed(True, "recomputes the same activations")


class CollateralStage(StageConfig):
    """Each pooled head's KL on neutral prompts, steered alone."""

    scores: str  # ScoresStage key
    intervention: str
    heads: list[tuple[int, int]]
    batch_size: int = unkeyed(8, FLOAT_ORDER.format("steering/test_collateral.py"))


class AnswersStage(StageConfig):
    """Greedy answers to questions, bare or prompted, by the base or steered model, or by
    llama.cpp running a GGUF."""

    questions: list[str]
    decoding: Any
    plan: str | None  # the plan's fingerprint; None: unsteered
    directive: Any  # inputs.recipe.Directive: the prompting reference
    gguf: str | None  # the GGUF's sha256: llama.cpp answers
    generation_batch: int


class MeasuredStage(StageConfig):
    """The judge's and the reference model's figures for answers (limits applied later)."""

    questions: list[str]
    texts: list[str]
    judge: str | list[str]
    reference: str  # the fingerprint of the model measuring perplexity and relevance
    relevance: dict  # evaluation.relevance.RELEVANCE, less the limit applied later
    batch_size: int = unkeyed(8, FLOAT_ORDER.format("evaluation/test_relevance.py"))


class ConceptFirstStage(MeasuredStage):
    """The same figures, perplexity and relevance only where the judge sees the concept
    (candidate answers: only their success counts)."""


class ContinuationsStage(StageConfig):
    """The model's greedy continuations of the neutral prompts (on-policy KL)."""

    generation_batch: int


class RetentionStage(StageConfig):
    """KL(base ‖ steered) and neutral perplexity."""

    base: str  # base model fingerprint
    model: str
    plan: str | None
    continuations: str  # ContinuationsStage key of the base run
    batch_size: int = unkeyed(8, FLOAT_ORDER.format("evaluation/test_retention.py"))
