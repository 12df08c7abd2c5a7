"""The run every command works on: resolved inputs plus cached stages.

`Run` answers and judges questions with one model (all `gcm-edit eval` needs);
`SteeringRun` adds the steering stages (pairs → δ → scores → plans). Each stage's output sits
in the run folder under a key hashed from everything it depends on, so a warm re-run, or a
run with another α or k, redoes only what changed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path

import torch
from lightning.pytorch.utilities import rank_zero_only
from safetensors.torch import load_file, save_file

from gcm_edit.cache import cache_root, read_json, stable_hash, write_json
from gcm_edit.commands.settings import ConceptSettings, ScoringSettings
from gcm_edit.console import console
from gcm_edit.errors import GcmEditError
from gcm_edit.evaluation.answers import Evaluation, answer_questions, judge_answers
from gcm_edit.evaluation.retention import Retention, measure_retention
from gcm_edit.inputs.loading import load_config, load_model, load_tokenizer, resolve_model
from gcm_edit.inputs.prompts import training_prompts
from gcm_edit.inputs.recipe import load_recipe
from gcm_edit.judges import Judge, make_judge
from gcm_edit.model.generation import Decoding
from gcm_edit.model.heads import HeadGeometry
from gcm_edit.pairs.contrastive import PairSet, build_pairs
from gcm_edit.scoring.engine import resolve_precision
from gcm_edit.scoring.methods import METHODS, score_heads
from gcm_edit.scoring.table import read_scores_csv, write_scores_csv
from gcm_edit.steering.plan import SteeringPlan
from gcm_edit.steering.vectors import steering_vectors
from gcm_edit.version import __version__


def pick_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def reject_sharding(settings: ScoringSettings) -> None:
    """Commands that go on to generate and bake need the whole model on one device."""
    if settings.strategy == "fsdp":
        raise GcmEditError(
            "--strategy fsdp shards the model, which the later stages cannot use; score first "
            "with `gcm-edit score --strategy fsdp` (same settings): this command reuses the scores"
        )


class Run:
    """One model on one concept. Cheap inputs (recipe, model path, config, architecture) are
    checked at construction; the model loads on first use."""

    def __init__(self, settings: ConceptSettings, model=None):
        """`model`: an already loaded copy of `settings.model` to share (composed concepts)."""
        self.settings = settings
        if model is not None:
            self.__dict__["model"] = model  # fills the cached property
        self.recipe = load_recipe(settings.concept)
        self.model_ref = resolve_model(settings.model)
        self.config = load_config(self.model_ref, settings.trust_remote_code)
        self.geometry = HeadGeometry.of(self.config)
        self.decoding = Decoding(
            max_new_tokens=settings.max_new_tokens or self.recipe.max_new_tokens
        )
        self.device = pick_device(settings.device)
        self.dir = cache_root() / "runs" / f"{self.model_ref.slug}-{self.model_ref.fingerprint()}"
        self.timings: dict[str, float] = {}
        self._retention: dict[str | None, Retention] = {}

    def default_out(self, suffix: str = "") -> Path:
        """checkpoints/<model>-<concept><suffix>: where a command writes unless told --out."""
        return Path("checkpoints") / f"{self.model_ref.slug}-{self.recipe.name}{suffix}"

    @contextmanager
    def stage(self, name: str, cached: bool = False) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start
        note = "cached" if cached else f"{self.timings[name]:.1f}s"
        console.print(f"[green]✓[/] {name} ({note})")

    @cached_property
    def model(self):
        with self.stage("load model"):
            return load_model(
                self.model_ref, self.device, self.settings.trust_remote_code, self.config
            )

    @cached_property
    def tokenizer(self):
        return load_tokenizer(self.model_ref, self.settings.trust_remote_code)

    @cached_property
    def judge(self) -> Judge:
        """The recipe's offline judge, or the LLM judge when --judge-url is given."""
        s = self.settings
        return make_judge(self.recipe.judge, s.judge_url, self.recipe.llm_question(), s.judge_model)

    @property
    def judge_id(self) -> str | list[str]:
        s = self.settings
        return self.recipe.judge if not s.judge_url else [s.judge_url, s.judge_model]

    def answers(self, label: str, questions: list[str], plan: SteeringPlan | None) -> list[str]:
        """Greedy answers to bare questions, base (plan None) or steered; cached."""
        fingerprint = None if plan is None else plan.fingerprint()
        key = stable_hash("answers", __version__, questions, self.decoding, fingerprint)
        path = self.dir / f"answers-{key}.json"
        if path.is_file():
            with self.stage(label, cached=True):
                return read_json(path)
        model = self.model  # loaded outside this stage's timer
        with self.stage(label):
            texts = answer_questions(
                model,
                self.tokenizer,
                questions,
                self.decoding,
                self.settings.batch_size,
                plan,
                label,
            )
        write_json(path, texts)
        return texts

    def judged(
        self, questions: list[str], texts: list[str], reference: Run | None = None
    ) -> Evaluation:
        """Concept and fluency of answers; perplexity under `reference`'s model (default ours)."""
        reference = reference or self
        return judge_answers(
            reference.model, reference.tokenizer, self.recipe, self.judge, questions, texts
        )

    def retention(self, plan: SteeringPlan | None) -> Retention:
        """KL and neutral perplexity of this model under `plan`; measured once per plan."""
        key = None if plan is None else plan.fingerprint()
        if key not in self._retention:
            self._retention[key] = measure_retention(self.model, self.tokenizer, plan)
        return self._retention[key]


class SteeringRun(Run):
    """A run that steers: contrastive pairs, steering vectors, head scores and plans."""

    settings: ScoringSettings

    def __init__(self, settings: ScoringSettings, model=None):
        super().__init__(settings, model)
        self._scores: dict[tuple[str, str], torch.Tensor] = {}

    @property
    def is_rank_zero(self) -> bool:
        """False in the extra processes of a multi-device scoring run: they stop after it."""
        return rank_zero_only.rank == 0

    @cached_property
    def training(self) -> list[tuple[str, list[dict], list[dict]]]:
        return training_prompts(self.recipe, self.settings.n_train)

    @cached_property
    def pairs_key(self) -> str:
        return stable_hash("pairs", __version__, self.judge_id, self.training, self.decoding)

    @cached_property
    def pairs(self) -> PairSet:
        path = self.dir / f"pairs-{self.pairs_key}.json"
        if path.is_file():
            with self.stage("contrastive pairs", cached=True):
                return PairSet.from_json(read_json(path))
        with self.stage("contrastive pairs"):
            pairs = build_pairs(
                self.model,
                self.tokenizer,
                self.recipe,
                self.settings.n_train,
                self.judge,
                self.decoding,
                self.settings.batch_size,
            )
        if not pairs.pairs:
            answers = self.dir / f"unusable-pairs-{self.pairs_key}.json"
            write_json(answers, pairs.to_json())
            raise GcmEditError(
                f"no usable pairs: the contrast prompts gave the concept "
                f"({self.recipe.judge} judge) in {pairs.contrast_adherence:.0%} of "
                f"{pairs.n_questions} questions; the answers are in {answers}; try wording "
                "the model follows, or another model"
            )
        write_json(path, pairs.to_json())
        return pairs

    @cached_property
    def deltas(self) -> dict[str, torch.Tensor]:
        path = self.dir / f"deltas-{self.pairs_key}.safetensors"
        if path.is_file():
            with self.stage("steering vectors", cached=True):
                return load_file(str(path))
        pairs = self.pairs.pairs
        with self.stage("steering vectors"):
            deltas = steering_vectors(
                self.model, pairs, self.tokenizer.pad_token_id, self.settings.batch_size
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in deltas.items()}, str(path))
        return deltas

    def scores(self, positions: str, method: str) -> torch.Tensor:
        """Head scores by `method`; cached on disk (by rank 0) and in memory."""
        if (positions, method) in self._scores:
            return self._scores[positions, method]
        path = self.scores_path(positions, method)
        if path.is_file():
            with self.stage("mediation scores", cached=True):
                scores = read_scores_csv(path)
        else:
            deltas = self.deltas[positions] if METHODS[method].uses_deltas else None
            pairs = self.pairs.pairs
            model = self.model  # loaded outside this stage's timer
            with self.stage("mediation scores"):
                scores = score_heads(
                    model,
                    pairs,
                    deltas,
                    self.tokenizer.pad_token_id,
                    method,
                    self.settings.runtime(),
                )
            if self.is_rank_zero:
                write_scores_csv(scores, path)
        self._scores[positions, method] = scores
        return scores

    def scores_path(self, positions: str, method: str) -> Path:
        s = self.settings
        key = stable_hash(
            self.pairs_key,
            method,
            positions if METHODS[method].uses_deltas else None,
            s.seed,
            resolve_precision(s.precision, torch.device(self.device)),
        )
        return self.dir / f"scores-{key}.csv"

    def plan(
        self, positions: str, alpha: float, k_percent: float, method: str, intervention: str
    ) -> SteeringPlan:
        """The top `k_percent` of heads by `method`, steered with strength α."""
        return SteeringPlan.from_scores(
            self.scores(positions, method),
            self.deltas[positions],
            k_percent,
            alpha,
            intervention,
        )
