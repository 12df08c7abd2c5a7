"""The run every command works on: resolved inputs plus cached stages.

`Run` answers and judges questions with one model (all `gcm-edit eval` needs);
`SteeringRun` (steering_run.py) adds the steering stages (pairs → δ → scores → plans). Each
stage's output sits in the run folder under a key hashed from everything it depends on, so a
warm re-run, or a run with another α or k, redoes only what changed.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import Any

from gcm_edit.cache import (
    cache_root,
    sha256_file,
    stable_hash,
)
from gcm_edit.commands.learned_judge import judge_fit, learned_judge_stage
from gcm_edit.commands.settings import ConceptSettings
from gcm_edit.commands.stage_runner import StageRunner
from gcm_edit.commands.stages import (
    AnswersStage,
    ConceptFirstStage,
    ContinuationsStage,
    MeasuredStage,
    RetentionStage,
)
from gcm_edit.console import console
from gcm_edit.errors import GcmEditError
from gcm_edit.evaluation.answers import (
    PROMPTED,
    Evaluation,
    answer_questions,
    answer_questions_gguf,
    evaluate_answers,
    measure_answers,
)
from gcm_edit.evaluation.capability import FACTUAL_DECODING, Capability
from gcm_edit.evaluation.relevance import RELEVANCE
from gcm_edit.evaluation.retention import Retention, measure_retention
from gcm_edit.inputs.factual import factual_items
from gcm_edit.inputs.loading import (
    load_config,
    load_model,
    load_tokenizer,
    parse_device,
    resolve_model,
)
from gcm_edit.inputs.prompts import choose_prompt_format
from gcm_edit.inputs.recipe import LEARNED, Directive
from gcm_edit.inputs.recipe_files import load_recipe
from gcm_edit.judges import Judge, make_judge
from gcm_edit.judges.learned import JudgeFit, LearnedJudge
from gcm_edit.model.generation import Decoding
from gcm_edit.model.heads import HeadGeometry
from gcm_edit.steering.constraint import base_continuations
from gcm_edit.steering.plan import SteeringPlan


def run_folder(runs: Path, slug: str, identity: str) -> Path:
    """The model's run folder, found by its contents' fingerprint (a copy of the model under
    another name reuses it); a cold one says why in one line when the name has others."""
    folders = sorted(p for p in runs.iterdir() if p.is_dir()) if runs.is_dir() else []
    same = [p for p in folders if p.name.endswith(f"-{identity}")]
    if same:
        return same[0]
    fingerprint = identity.split("-")[0]
    others = [p for p in folders if p.name.startswith(f"{slug}-") and fingerprint not in p.name]
    if others:
        console.print(
            f"[yellow]cache:[/] {slug}'s weights, config or tokenizer differ from its "
            f"{len(others)} cached run(s): every stage is computed anew",
            soft_wrap=True,
        )
    return runs / f"{slug}-{identity}"


class Run(StageRunner):
    """One model on one concept. Cheap inputs (recipe, model path, config, architecture) are
    checked at construction; the model loads on first use."""

    def __init__(self, settings: ConceptSettings, model=None):
        """`model`: an already loaded copy of `settings.model` to share (composed concepts)."""
        self.settings = settings
        if model is not None:
            self.__dict__["model"] = model  # fills the cached property
        recipe = load_recipe(settings.concept)
        self.device = parse_device(settings.accelerator)  # a typo costs a second, not a conversion
        self.model_ref = resolve_model(settings.model)
        self.config = load_config(self.model_ref, settings.trust_remote_code)
        self.geometry = HeadGeometry.of(self.config)
        self.tokenizer = load_tokenizer(self.model_ref, settings.trust_remote_code)
        self.recipe, self.prompt_format = choose_prompt_format(
            recipe, self.tokenizer, settings.prompt_format, self.model_ref.name
        )
        base = self.recipe.base_prompt if self.prompt_format == "base" else None
        self.decoding = Decoding(
            max_new_tokens=settings.max_new_tokens or self.recipe.max_new_tokens,
            stop=tuple(base.stop) if base else (),
        )
        identity = self.model_ref.fingerprint()
        if self.prompt_format == "base":  # other prompts: other answers, pairs and scores
            identity += f"-base-{stable_hash(self.tokenizer.chat_template)[:8]}"
        self.dir = run_folder(cache_root() / "runs", self.model_ref.slug, identity)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise GcmEditError(
                f"cannot use the cache folder {cache_root()} ({exc.strerror}): point "
                "GCM_EDIT_CACHE at a folder you can write"
            ) from None
        super().__init__()

    def inputs(self) -> list[tuple[str, Path]]:
        """What this run reads and no output may replace: the model as named (a folder or a
        .gguf file), where it loads from, the recipe and its data files."""
        named = Path(self.settings.model).expanduser()
        found = [("the model's folder", Path(self.model_ref.source))]
        if named.exists():
            found.append(("the model file" if named.is_file() else "the model's folder", named))
        found += [("the recipe's file", path) for path in self.recipe.files()[:1]]
        found += [("a recipe data file", path) for path in self.recipe.files()[1:]]
        return [(name, path) for name, path in found if path.exists()]

    def default_out(self, suffix: str = "") -> Path:
        """checkpoints/<model>-<concept><suffix>: where a command writes unless told --out."""
        return Path("checkpoints") / f"{self.model_ref.slug}-{self.recipe.name}{suffix}"

    @cached_property
    def model(self):
        with self.stage("load model"):
            return load_model(
                self.model_ref, self.device, self.settings.trust_remote_code, self.config
            )

    @cached_property
    def judge(self) -> Judge:
        """The recipe's offline judge (a learned one fitted on this model's answers), or the
        LLM judge when --judge-url or --judge-model is given."""
        s = self.settings
        if self.recipe.judge == LEARNED and not s.judge_url and not s.judge_model:
            return LearnedJudge(lambda: self.model, self.tokenizer, self.judge_fit)
        return make_judge(self.recipe.judge, s.judge_url, self.recipe.llm_question(), s.judge_model)

    @property
    def judge_name(self) -> str:
        """What judges the concept, as the manifest and the card name it."""
        s, asked = self.settings, f'asked "{self.recipe.llm_question()}"'
        if s.judge_url:
            return f"an LLM ({s.judge_model or 'judge'} at {s.judge_url}) {asked}"
        if s.judge_model:
            return f"an LLM ({Path(s.judge_model).name} in llama.cpp) {asked}"
        return self.recipe.judge

    @cached_property
    def judge_id(self) -> str | list[str]:
        """The judge's identity in cache keys: an LLM judge by its address or file contents."""
        s = self.settings
        if s.judge_url:
            return [s.judge_url, s.judge_model or "judge"]
        if s.judge_model:
            return ["gguf", sha256_file(Path(s.judge_model).expanduser())[:16]]
        if self.recipe.judge == LEARNED:
            return f"{LEARNED}-{learned_judge_stage(self).key()}"
        return self.recipe.judge

    @cached_property
    def judge_fit(self) -> JudgeFit:
        """The learned judge's fit: stops the run when the model barely follows the
        directive (commands/learned_judge.py)."""
        return judge_fit(self)

    def answers_stage(
        self,
        questions: list[str],
        plan: SteeringPlan | None,
        directive: Directive | None = None,
        decoding: Decoding | None = None,
        gguf: Path | None = None,
    ) -> AnswersStage:
        """What `answers` computes from (its cache key)."""
        return AnswersStage(
            questions=questions,
            decoding=decoding or self.decoding,
            plan=None if plan is None else plan.fingerprint(),
            directive=directive,
            gguf=None if gguf is None else sha256_file(gguf),
            generation_batch=self.settings.generation_batch,
        )

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
        decoding = decoding or self.decoding
        if gguf is not None and plan is not None:
            raise ValueError("a GGUF carries its own steering: no plan on top")
        stage = self.answers_stage(questions, plan, directive, decoding, gguf)

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
                stage.generation_batch,
                plan,
                label,
                directive,
            )

        return self.cached(
            "answers-{key}.json",
            "answers",
            stage,
            compute,
            decode=decode,
            label=label,
            needs_model=gguf is None,
        )

    def judged(
        self,
        questions: list[str],
        texts: list[str],
        reference: Run | None = None,
        concept_first: bool = False,
    ) -> Evaluation:
        """Concept, fluency and relevance of answers; perplexity and relevance under
        `reference`'s model (default ours), with `concept_first` only where the concept is
        present (`measure_answers`). The model's and the judge's figures are the cached
        stage; the recipe's limits are applied to them on every call (cheap), so changing a
        limit never recomputes them."""
        reference = reference or self

        def decode(rows: Any) -> list[dict]:
            if not (isinstance(rows, list) and len(rows) == len(texts)):
                raise ValueError(f"expected figures for {len(texts)} answers")
            return rows

        stage = (ConceptFirstStage if concept_first else MeasuredStage)(
            questions=questions,
            texts=texts,
            judge=reference.judge_id,
            reference=reference.model_ref.fingerprint(),
            relevance={k: v for k, v in RELEVANCE.items() if k != "min_pmi"},
            batch_size=self.settings.batch_size,
        )
        measured = self.cached(
            "measured-{key}.json",
            "measured answers",
            stage,
            lambda: measure_answers(
                reference.model,
                reference.tokenizer,
                reference.judge,
                questions,
                texts,
                stage.batch_size,
                concept_first,
            ),
            decode=decode,
        )
        return evaluate_answers(self.recipe, reference.judge.label, questions, texts, measured)

    @cached_property
    def continuations_stage(self) -> ContinuationsStage:
        return ContinuationsStage(generation_batch=self.settings.generation_batch)

    @cached_property
    def continuations(self) -> list[list[int]]:
        """This model's greedy continuations of the neutral prompts (for on-policy KL)."""
        stage = self.continuations_stage
        return self.cached(
            "continuations-{key}.json",
            "continuations",
            stage,
            lambda: base_continuations(self.model, self.tokenizer, stage.generation_batch),
            decode=lambda ids: [[int(t) for t in row] for row in ids],
        )

    def retention(self, plan: SteeringPlan | None = None, base: Run | None = None) -> Retention:
        """KL(base ‖ this model under `plan`) and neutral perplexity; `base` defaults to this
        model unsteered. Measured once per plan: later calls read the run folder."""
        base = base or self
        stage = RetentionStage(
            base=base.model_ref.fingerprint(),
            model=self.model_ref.fingerprint(),
            plan=None if plan is None else plan.fingerprint(),
            continuations=base.continuations_stage.key(),
            batch_size=self.settings.batch_size,
        )
        return self.cached(
            "retention-{key}.json",
            "retention",
            stage,
            lambda: measure_retention(
                base.model,
                base.tokenizer,
                plan,
                self.model,
                base.continuations,
                stage.batch_size,
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
        directive = base.recipe.directive
        if directive is not None:
            label = f"factual answers ({PROMPTED})"
            answers[PROMPTED] = base.answers(label, questions, None, decoding, directive)
        return Capability.judge(items, *answers.values())
