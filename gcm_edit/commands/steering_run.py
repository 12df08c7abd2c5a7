"""The run every steering command works on: `Run` plus the steering stages, contrastive pairs
→ steering vectors δ → head scores → plans, each cached in the run folder like every stage."""

from __future__ import annotations

from functools import cached_property

import torch

from gcm_edit.cache import write_json
from gcm_edit.commands.run import Run
from gcm_edit.commands.settings import ScoringSettings
from gcm_edit.commands.stage_runner import checked_tensors
from gcm_edit.commands.stages import (
    CollateralStage,
    DeltasStage,
    PairsStage,
    ScoresStage,
)
from gcm_edit.errors import GcmEditError
from gcm_edit.inputs.prompts import prefill_ids, training_prompts
from gcm_edit.pairs.contrastive import PairSet, build_pairs
from gcm_edit.scoring.engine import resolve_precision
from gcm_edit.scoring.methods import METHODS, score_heads
from gcm_edit.steering.collateral import COLLATERAL_POOL, head_collateral, ranking
from gcm_edit.steering.plan import SteeringPlan, select_heads
from gcm_edit.steering.vectors import HEAD_NORM, POSITIONS, original_key, steering_vectors


class SteeringRun(Run):
    """A run that steers: contrastive pairs, steering vectors, head scores and plans."""

    settings: ScoringSettings

    def __init__(self, settings: ScoringSettings, model=None):
        super().__init__(settings, model)
        prefill_ids(self.tokenizer, self.recipe)  # an unencodable prefill fails before the model
        self._scores: dict[tuple[str, str], torch.Tensor] = {}

    @cached_property
    def training(self) -> list[tuple[str, list[dict], list[dict]]]:
        return training_prompts(self.recipe, self.settings.n_train)

    @cached_property
    def pairs_stage(self) -> PairsStage:
        return PairsStage(
            judge=self.judge_id,
            training=self.training,
            decoding=self.decoding,
            prefill=self.recipe.prefill.model_dump(exclude_none=True),
            generation_batch=self.settings.generation_batch,
        )

    @cached_property
    def pairs(self) -> PairSet:
        return self.cached(
            "pairs-{key}.json",
            "pairs",
            self.pairs_stage,
            self._build_pairs,
            encode=PairSet.to_json,
            decode=PairSet.from_json,
            label="contrastive pairs",
        )

    def _build_pairs(self) -> PairSet:
        pairs = build_pairs(
            self.model,
            self.tokenizer,
            self.recipe,
            self.settings.n_train,
            self.judge,
            self.decoding,
            self.pairs_stage.generation_batch,
        )
        if not pairs.pairs:
            answers = self.dir / f"unusable-pairs-{self.pairs_stage.key()}.json"
            write_json(answers, pairs.to_json())
            raise GcmEditError(
                f"no usable pairs: the contrast prompts gave the concept "
                f"(judged by {self.judge_name}) in {pairs.contrast_adherence:.0%} of "
                f"{pairs.n_questions} questions; the answers are in {answers}; try wording "
                "the model follows, or another model"
            )
        return pairs

    @cached_property
    def deltas(self) -> dict[str, torch.Tensor]:
        """δ and the original runs' mean z per positions mode [L, H, d], and HEAD_NORM [L, H]
        (steering/vectors.py)."""
        g = self.geometry
        per_head = (g.n_layers, g.n_heads, g.head_dim)
        shapes = {key: per_head for p in POSITIONS for key in (p, original_key(p))}
        shapes[HEAD_NORM] = (g.n_layers, g.n_heads)
        pairs = self.pairs.pairs
        stage = DeltasStage(pairs=self.pairs_stage.key(), batch_size=self.settings.batch_size)
        return self.cached(
            "deltas-{key}.safetensors",
            "steering vectors",
            stage,
            lambda: steering_vectors(
                self.model, pairs, self.tokenizer.pad_token_id, stage.batch_size
            ),
            decode=lambda tensors: checked_tensors(tensors, shapes),
            label="steering vectors",
        )

    def scores(self, positions: str, method: str) -> torch.Tensor:
        """Head scores [L, H] by `method`; cached on disk (by rank 0) and in memory."""
        if (positions, method) not in self._scores:
            _ = self.pairs  # the inputs' stages are timed apart from scoring
            if METHODS[method].uses_deltas:
                _ = self.deltas
            shape = {"scores": (self.geometry.n_layers, self.geometry.n_heads)}
            self._scores[positions, method] = self.cached(
                "scores-{key}.safetensors",
                "head scores",
                self.scores_stage(positions, method),
                lambda: self._score(positions, method),
                encode=lambda scores: {"scores": scores},
                decode=lambda tensors: checked_tensors(tensors, shape)["scores"],
                label="mediation scores",
            )
        return self._scores[positions, method]

    def _score(self, positions: str, method: str) -> torch.Tensor:
        deltas = self.deltas[positions] if METHODS[method].uses_deltas else None
        return score_heads(
            self.model,
            self.pairs.pairs,
            deltas,
            self.tokenizer.pad_token_id,
            method,
            self.settings.runtime(),
        )

    def scores_stage(self, positions: str, method: str) -> ScoresStage:
        runtime = self.settings.runtime()
        return ScoresStage(
            pairs=self.pairs_stage.key(),
            method=method,
            positions=positions if METHODS[method].uses_deltas else None,
            seed=runtime.seed,
            precision=resolve_precision(runtime.precision, torch.device(self.device)),
            batch_size=runtime.batch_size,
            head_batch=runtime.head_batch,
            devices=runtime.devices,
            strategy=runtime.strategy,
            activation_checkpointing=runtime.activation_checkpointing,
        )

    def collateral(self, positions: str, method: str, intervention: str):
        """κ [L, H]: KL on neutral prompts with each head alone steered at α = 1
        (steering/collateral.py: the ranking it feeds does not depend on α), measured for the
        pool of heads that ranking may choose from: the top COLLATERAL_POOL% by score."""
        scores = self.scores(positions, method)
        heads = [h for h in select_heads(scores, COLLATERAL_POOL) if scores[h] > 0]
        shape = {"collateral": (self.geometry.n_layers, self.geometry.n_heads)}

        def one_head(head: tuple[int, int]) -> SteeringPlan:
            return self.plan(positions, 1.0, 0.0, method, intervention, only=[head])

        stage = CollateralStage(
            scores=self.scores_stage(positions, method).key(),
            intervention=intervention,
            heads=heads,
            batch_size=self.settings.batch_size,
        )
        return self.cached(
            "collateral-{key}.safetensors",
            "collateral cost",
            stage,
            lambda: head_collateral(self.model, self.tokenizer, heads, one_head, stage.batch_size),
            encode=lambda cost: {"collateral": cost},
            decode=lambda tensors: checked_tensors(tensors, shape)["collateral"],
            label="collateral cost",
        )

    def plan(
        self,
        positions: str,
        alpha: float,
        k_percent: float,
        method: str,
        intervention: str,
        rank_by: str = "effect",
        exclude: frozenset[tuple[int, int]] = frozenset(),
        only: list[tuple[int, int]] | None = None,
    ) -> SteeringPlan:
        """The top `k_percent` of heads ranked by `rank_by` (effect: the `method` score;
        effect-per-kl: score / √collateral), none of `exclude`, steered with strength α;
        `only`: exactly these heads instead."""
        scores = self.scores(positions, method)
        if only is None:
            cost = None
            if rank_by != "effect":
                cost = self.collateral(positions, method, intervention)
            scores = ranking(scores, cost, rank_by).clone()
            for head in exclude:
                scores[head] = -torch.inf
            only = select_heads(scores, k_percent)
        means = self.deltas[original_key(positions)]  # read by rank1 only
        return SteeringPlan.for_heads(only, self.deltas[positions], alpha, intervention, means)
