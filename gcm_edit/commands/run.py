"""The run every command works on: resolved inputs plus cached stages.

`Run` answers and judges questions with one model (all `gcm-edit eval` needs);
`SteeringRun` adds the steering stages (pairs → δ → scores → plans). Each stage's output sits
in the run folder under a key hashed from everything it depends on, so a warm re-run, or a
run with another α or k, redoes only what changed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

import torch
from lightning.pytorch.utilities import rank_zero_only

from gcm_edit.cache import (
    cache_root,
    load_entry,
    sha256_file,
    stable_hash,
    store_entry,
    write_json,
)
from gcm_edit.commands.settings import ConceptSettings, ScoringSettings
from gcm_edit.console import console
from gcm_edit.errors import GcmEditError
from gcm_edit.evaluation.answers import (
    Evaluation,
    answer_questions,
    answer_questions_gguf,
    judge_answers,
)
from gcm_edit.evaluation.capability import FACTUAL_DECODING, Capability
from gcm_edit.evaluation.relevance import RELEVANCE
from gcm_edit.evaluation.retention import Retention, base_continuations, measure_retention
from gcm_edit.inputs.factual import factual_items
from gcm_edit.inputs.loading import (
    load_config,
    load_model,
    load_tokenizer,
    parse_device,
    resolve_model,
)
from gcm_edit.inputs.prompts import choose_prompt_format, prefill_ids, training_prompts
from gcm_edit.inputs.recipe import Directive, load_recipe
from gcm_edit.judges import Judge, make_judge
from gcm_edit.model.generation import Decoding
from gcm_edit.model.heads import HeadGeometry
from gcm_edit.pairs.contrastive import PairSet, build_pairs
from gcm_edit.scoring.engine import resolve_precision
from gcm_edit.scoring.methods import METHODS, score_heads
from gcm_edit.steering.collateral import COLLATERAL_POOL, head_collateral, ranking
from gcm_edit.steering.plan import SteeringPlan, select_heads
from gcm_edit.steering.vectors import HEAD_NORM, POSITIONS, original_key, steering_vectors
from gcm_edit.version import __version__

T = TypeVar("T")


def _same(value: Any) -> Any:
    return value


def checked_tensors(
    tensors: dict[str, torch.Tensor], shapes: dict[str, tuple[int, ...]]
) -> dict[str, torch.Tensor]:
    """A cached tensor entry as expected: these names, these shapes, finite values."""
    if set(tensors) != set(shapes):
        raise ValueError(f"holds {sorted(tensors)}, expected {sorted(shapes)}")
    for name, shape in shapes.items():
        if tuple(tensors[name].shape) != shape:
            raise ValueError(f"{name} has shape {tuple(tensors[name].shape)}, expected {shape}")
        if not torch.isfinite(tensors[name]).all():
            raise ValueError(f"{name} holds non-finite values")
    return tensors


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
        recipe = load_recipe(settings.concept)
        self.model_ref = resolve_model(settings.model)
        self.config = load_config(self.model_ref, settings.trust_remote_code)
        self.geometry = HeadGeometry.of(self.config)
        self.device = parse_device(settings.device)
        self.tokenizer = load_tokenizer(self.model_ref, settings.trust_remote_code)
        self.recipe, self.prompt_format = choose_prompt_format(
            recipe, self.tokenizer, settings.prompt_format, self.model_ref.name
        )
        base = self.recipe.base_prompt if self.prompt_format == "base" else None
        self.decoding = Decoding(
            max_new_tokens=settings.max_new_tokens or self.recipe.max_new_tokens,
            stop=tuple(base.stop) if base else (),
        )
        folder = f"{self.model_ref.slug}-{self.model_ref.fingerprint()}"
        if self.prompt_format == "base":  # other prompts: other answers, pairs and scores
            folder += f"-base-{stable_hash(self.tokenizer.chat_template)[:8]}"
        self.dir = cache_root() / "runs" / folder
        self.timings: dict[str, float] = {}

    def default_out(self, suffix: str = "") -> Path:
        """checkpoints/<model>-<concept><suffix>: where a command writes unless told --out."""
        return Path("checkpoints") / f"{self.model_ref.slug}-{self.recipe.name}{suffix}"

    @property
    def is_rank_zero(self) -> bool:
        """False in the extra processes of a multi-device scoring run: they stop after it."""
        return rank_zero_only.rank == 0

    def _done(self, name: str, seconds: float, cached: bool) -> None:
        self.timings[name] = self.timings.get(name, 0.0) + seconds
        note = "cached" if cached else f"{self.timings[name]:.1f}s"
        console.print(f"[green]✓[/] {name} ({note})")

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time a stage and print a line when it is done."""
        start = time.perf_counter()
        yield
        self._done(name, time.perf_counter() - start, cached=False)

    def cached(
        self,
        name: str,
        kind: str,
        key: str,
        compute: Callable[[], T],
        encode: Callable[[T], Any] = _same,
        decode: Callable[[Any], T] = _same,
        label: str | None = None,
        needs_model: bool = True,
    ) -> T:
        """The value of a stage from the run folder, else computed (as a timed stage when it
        has a `label`) and stored. `decode` rejects implausible entries (see cache.py)."""
        path = self.dir / name.format(key=key)
        start = time.perf_counter()
        value = load_entry(path, kind, decode)
        if value is not None:
            if label:
                self._done(label, time.perf_counter() - start, cached=True)
            return value
        if needs_model:
            _ = self.model  # loaded outside the stage's timer
        with self.stage(label) if label else nullcontext():
            value = compute()
        if self.is_rank_zero:
            store_entry(path, kind, encode(value))
        return value

    @cached_property
    def model(self):
        with self.stage("load model"):
            return load_model(
                self.model_ref, self.device, self.settings.trust_remote_code, self.config
            )

    @cached_property
    def judge(self) -> Judge:
        """The recipe's offline judge, or the LLM judge when --judge-url is given."""
        s = self.settings
        return make_judge(self.recipe.judge, s.judge_url, self.recipe.llm_question(), s.judge_model)

    @property
    def judge_id(self) -> str | list[str]:
        s = self.settings
        return self.recipe.judge if not s.judge_url else [s.judge_url, s.judge_model]

    def answers(
        self,
        label: str,
        questions: list[str],
        plan: SteeringPlan | None,
        decoding: Decoding | None = None,
        directive: Directive | None = None,
        gguf: Path | None = None,
    ) -> list[str]:
        """Greedy answers to questions asked bare (or with `directive`'s contrast side: the
        prompting reference), by the base model (plan None) or the steered one; with `gguf`,
        by llama.cpp running that file (keyed by its sha256) instead."""
        fingerprint = None if plan is None else plan.fingerprint()
        decoding = decoding or self.decoding
        if gguf is not None and plan is not None:
            raise ValueError("a GGUF carries its own steering: no plan on top")
        runtime = () if gguf is None else ("llama.cpp", sha256_file(gguf))

        def decode(texts: Any) -> list[str]:
            if not (isinstance(texts, list) and len(texts) == len(questions)):
                raise ValueError(f"expected {len(questions)} answers")
            return [str(text) for text in texts]

        def compute() -> list[str]:
            if gguf is not None:
                return answer_questions_gguf(
                    gguf, self.tokenizer, questions, decoding, label, directive
                )
            return answer_questions(
                self.model,
                self.tokenizer,
                questions,
                decoding,
                self.settings.generation_batch,
                plan,
                label,
                directive,
            )

        return self.cached(
            "answers-{key}.json",
            "answers",
            stable_hash(__version__, questions, decoding, fingerprint, directive, *runtime),
            compute,
            decode=decode,
            label=label,
            needs_model=gguf is None,
        )

    def judged(
        self, questions: list[str], texts: list[str], reference: Run | None = None
    ) -> Evaluation:
        """Concept and fluency of answers; perplexity under `reference`'s model (default ours)."""
        reference = reference or self
        return self.cached(
            "judged-{key}.json",
            "judged answers",
            stable_hash(
                __version__,
                questions,
                texts,
                self.judge_id,
                self.recipe.fluency.model_dump(),
                reference.model_ref.fingerprint(),
                RELEVANCE if self.recipe.require_relevance else {**RELEVANCE, "required": False},
            ),
            lambda: judge_answers(
                reference.model,
                reference.tokenizer,
                self.recipe,
                self.judge,
                questions,
                texts,
                self.settings.generation_batch,
            ),
            encode=lambda ev: {**ev.model_dump(), "answers": ev.answers},
            decode=lambda data: Evaluation(**data),
        )

    @cached_property
    def continuations(self) -> list[list[int]]:
        """This model's greedy continuations of the neutral prompts (for on-policy KL)."""
        return self.cached(
            "continuations-{key}.json",
            "continuations",
            stable_hash(__version__, self.model_ref.fingerprint()),
            lambda: base_continuations(self.model, self.tokenizer, self.settings.generation_batch),
            decode=lambda ids: [[int(t) for t in row] for row in ids],
        )

    def retention(self, plan: SteeringPlan | None = None, base: Run | None = None) -> Retention:
        """KL(base ‖ this model under `plan`) and neutral perplexity; `base` defaults to this
        model unsteered. Measured once per plan: later calls read the run folder."""
        base = base or self
        key = stable_hash(
            __version__,
            base.model_ref.fingerprint(),
            self.model_ref.fingerprint(),
            None if plan is None else plan.fingerprint(),
        )
        return self.cached(
            "retention-{key}.json",
            "retention",
            key,
            lambda: measure_retention(
                base.model,
                base.tokenizer,
                plan,
                self.model,
                base.continuations,
                self.settings.generation_batch,
            ),
            encode=Retention.model_dump,
            decode=Retention.model_validate,
        )

    def capability(
        self, plan: SteeringPlan | None, base: Run | None = None, gguf: Path | None = None
    ) -> Capability:
        """The shipped factual questions answered by `base` (default: this model, unsteered)
        and by this model under `plan` (or by llama.cpp running `gguf`)."""
        base = base or self
        items = factual_items()
        questions = [item.question for item in items]
        decoding = replace(FACTUAL_DECODING, stop=self.decoding.stop)
        answers = {
            "base": base.answers("factual answers (base)", questions, None, decoding),
            "steered": self.answers(
                "factual answers (steered)", questions, plan, decoding, gguf=gguf
            ),
        }
        return Capability.judge(items, answers["base"], answers["steered"])


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
    def pairs_key(self) -> str:
        prefill = self.recipe.prefill.model_dump(exclude_none=True)
        parts = (self.judge_id, self.training, self.decoding, *([prefill] if prefill else []))
        return stable_hash("pairs", __version__, *parts)

    @cached_property
    def pairs(self) -> PairSet:
        return self.cached(
            "pairs-{key}.json",
            "pairs",
            self.pairs_key,
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
            self.settings.generation_batch,
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
        return self.cached(
            "deltas-{key}.safetensors",
            "steering vectors",
            self.pairs_key,
            lambda: steering_vectors(
                self.model, pairs, self.tokenizer.pad_token_id, self.settings.batch_size
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
                self.scores_key(positions, method),
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

    def scores_key(self, positions: str, method: str) -> str:
        s = self.settings
        return stable_hash(
            self.pairs_key,
            method,
            positions if METHODS[method].uses_deltas else None,
            s.seed,
            resolve_precision(s.precision, torch.device(self.device)),
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

        return self.cached(
            "collateral-{key}.safetensors",
            "collateral cost",
            stable_hash(__version__, self.scores_key(positions, method), intervention, heads),
            lambda: head_collateral(
                self.model, self.tokenizer, heads, one_head, self.settings.generation_batch
            ),
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
