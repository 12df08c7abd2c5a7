"""`--edit distilled`: the selected heads' edit learned from the prompted model.

The mean-difference plan (α·δ on the top-k% heads) is the start and the rival. The prompted
base model answers the recipe's distillation questions (best of `--teacher-candidates`,
judged concept ∧ fluent ∧ relevant), the heads' b (and rank-`--edit-rank` maps A) are fitted
to its next-token distributions under KL ≤ `--kl-budget` on neutral prompts
(steering/distill.py), and of the snapshots the best on the validation split within that KL
is the plan. Held-out, the card compares it with the mean-difference plan on the same heads.

The model libraries are imported inside `fit`: the command line imports this config for --help.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from gcm_edit.commands.edits.base import EditConfig, FittedEdit, flag, learned_option
from gcm_edit.commands.edits.distilled_report import DistillationReport
from gcm_edit.commands.edits.teacher_data import (
    TeacherStage,
    judged_good,
    steered_set,
    steered_stage,
    teacher_set,
    teacher_stage,
)
from gcm_edit.commands.settings import DISTILL_KL
from gcm_edit.console import console
from gcm_edit.errors import GcmEditError
from gcm_edit.keys import StageConfig

if TYPE_CHECKING:
    from gcm_edit.commands.export_settings import ExportSettings
    from gcm_edit.commands.steering_run import SteeringRun
    from gcm_edit.commands.strength import Strength
    from gcm_edit.pairs.teacher import TeacherExample
    from gcm_edit.steering.learned_edit import EditObjective, LearnedEdit

MAX_CANDIDATES = 16  # best-of-n beyond this costs hours on a CPU for a few more answers


class DistilledStage(StageConfig):
    """The fitted edit: teacher answers, start plan, heads, objective, batching."""

    teacher: str  # TeacherStage key
    steered: str | None  # SteeredAnswersStage key (--teacher-steered)
    start: str  # the mean-difference plan's fingerprint
    heads: list[tuple[int, int]]
    objective: Any  # steering.distill.EditObjective
    batch: int
    on_policy_steps: int
    self_steps: int  # self-training (--edit-self-steps), judged like the teacher
    decoding: Any  # the student's own answers (on-policy steps, self-training)
    generation_batch: int  # pairs.teacher.SAMPLE_BATCH, as the teacher's


class DistilledConfig(EditConfig):
    """The heads' edit learned from the model asked with the directive."""

    kind: Literal["distilled"] = "distilled"
    budget_is_target: ClassVar[bool] = True
    rank: int = Field(
        4,
        ge=0,
        le=64,
        description="Rank of each head's learned map A_h (0: vectors only).",
        json_schema_extra=flag("edit-rank"),
    )
    # 80 steps of 4 answers: its time is in docs/results.md#stage-times-and-the-cold-budget
    steps: int = learned_option("steps", 80)
    batch: int = Field(
        4,
        ge=1,
        le=4096,
        description="Teacher answers per distillation step.",
        json_schema_extra=flag("edit-batch"),
    )
    on_policy_steps: int = Field(
        0,
        ge=0,
        description="Then this many steps on the student's own answers, scored by the "
        "teacher (on-policy); early stopping keeps them only if they win on validation.",
        json_schema_extra=flag("edit-on-policy-steps"),
    )
    self_steps: int = Field(
        0,
        ge=0,
        description="Then this many steps on the student's own answers that the judges keep "
        "(best of --teacher-candidates), learned one-hot with the teacher's "
        "(rejection-sampled self-training); early stopping keeps them only if they win.",
        json_schema_extra=flag("edit-self-steps"),
    )
    lr: float = learned_option("lr", 0.05)
    eval_every: int = learned_option("eval_every", 40)
    questions: int = Field(
        128,
        ge=1,
        description="Distillation questions the prompted model answers.",
        json_schema_extra=flag("distill-questions"),
    )
    teacher_candidates: int = Field(
        3,
        ge=1,
        le=MAX_CANDIDATES,
        description="Answers per distillation question at most (greedy, then samples).",
    )
    lambda_f: float = learned_option("lambda_f", 1.0)
    teacher_steered: bool = Field(
        False,
        description="Also learn the start plan's own judged answers (the mean-difference-"
        "steered model, best of --teacher-candidates), one-hot: where the prompt fails, it "
        "may not.",
    )
    neurons: int = Field(
        0,
        ge=0,
        le=4096,
        description="Gated neurons learned on one layer's MLP besides the heads' edit (0: "
        "none); the export's MLPs grow by as many in every layer, zero in the others.",
        json_schema_extra=flag("edit-neurons"),
    )
    neuron_layer: int | None = Field(
        None,
        ge=0,
        description="The layer whose MLP gets --edit-neurons (default: the median layer of "
        "the selected heads).",
        json_schema_extra=flag("edit-neuron-layer"),
    )
    kl_continuations: bool = Field(
        False,
        description="Also hold KL on the base model's own greedy continuations of the "
        "neutral prompts, not their prompt positions alone.",
        json_schema_extra=flag("kl-continuations"),
    )

    def written_as(self, start: str) -> str:
        return "distilled"  # vectors and maps, not α·δ

    def full_only(self) -> str | None:
        return "--edit-neurons" if self.neurons else None

    def check(self, run: SteeringRun) -> None:
        from gcm_edit.model.mlp import require_gated_mlp

        if self.neuron_layer is not None and self.neuron_layer >= run.geometry.n_layers:
            raise GcmEditError(
                f"--edit-neuron-layer {self.neuron_layer}: the model has "
                f"{run.geometry.n_layers} layers (0 to {run.geometry.n_layers - 1})"
            )
        if self.neurons:
            require_gated_mlp(run.config)
        pool = len(run.recipe.distill_questions())
        # the default asks up to 128 of whatever the recipe has; a number given is meant
        if "questions" in self.model_fields_set and self.questions > pool:
            raise GcmEditError(
                f"--distill-questions {self.questions}: recipe '{run.recipe.name}' has {pool} "
                f"distillation questions; give at most {pool}, or add questions to its `distill`"
            )

    def neuron_layer_for(self, heads: list[tuple[int, int]]) -> int:
        """--edit-neuron-layer, else the median layer of the selected heads."""
        if self.neuron_layer is not None:
            return self.neuron_layer
        layers = sorted(layer for layer, _ in heads)
        return layers[(len(layers) - 1) // 2]

    def objective(self, settings: ExportSettings, heads: list[tuple[int, int]]) -> EditObjective:
        from gcm_edit.steering.distill import NEUTRAL_PER_STEP
        from gcm_edit.steering.learned_edit import EditObjective

        return EditObjective(
            rank=self.rank,
            lr=self.lr,
            steps=self.steps,
            kl_target=DISTILL_KL if settings.kl_budget is None else settings.kl_budget,
            lambda_f=self.lambda_f,
            seed=settings.seed,
            snapshot_every=self.eval_every,
            neutral_prompts=NEUTRAL_PER_STEP,
            neutral_continuations=self.kl_continuations,
            neurons=self.neurons,
            neuron_layer=self.neuron_layer_for(heads) if self.neurons else 0,
        )

    def fit(self, run: SteeringRun, strength: Strength, settings: ExportSettings) -> FittedEdit:
        from gcm_edit.commands.candidates import best_snapshot

        rival = strength.plan(run)
        asked = teacher_stage(run, self.questions, self.teacher_candidates, settings.seed)
        teacher = teacher_set(run, asked)
        steering = steered_stage(asked, rival) if self.teacher_steered else None
        steered = steered_set(run, steering, rival) if steering else None
        examples = teacher.examples + (steered.examples if steered else [])
        if not examples:
            tries = f"{len(asked.questions)} distillation questions in {asked.candidates} tries"
            raise GcmEditError(
                f"the prompted model gave no good answer (concept ∧ fluent ∧ relevant) to "
                f"{tries}: raise --teacher-candidates, add --teacher-steered, or use "
                "--edit mean-diff"
            )
        goal = self.objective(settings, rival.heads)
        stage = DistilledStage(
            teacher=asked.key(),
            steered=steering.key() if steering else None,
            start=rival.fingerprint(),
            heads=list(rival.heads),
            objective=goal,
            batch=self.batch,
            on_policy_steps=self.on_policy_steps,
            self_steps=self.self_steps,
            decoding=run.decoding,
            generation_batch=asked.generation_batch,
        )
        result = self._learned(run, stage, rival, examples, asked)
        snapshots = [(x["step"], result.plan(run.geometry, x["step"])) for x in result.snapshots]
        chosen = best_snapshot(
            run,
            strength,
            snapshots,
            goal.kl_target,
            "distilled",
            "distilled",
            settings.n_validation,
        )
        if chosen is None:
            smallest = min(run.retention(plan).kl for _, plan in snapshots)
            raise GcmEditError(
                f"no distilled snapshot stays within KL {goal.kl_target:g} (the smallest was "
                f"{smallest:.3f}): raise --kl-budget or --edit-steps"
            )
        step, plan, rows = chosen
        console.print(
            f"distilled edit: kept step {step} on {len(plan.steered_heads)} heads from "
            f"{len(examples)} teacher answers, KL target {goal.kl_target:g}"
        )

        def report(comparison) -> DistillationReport:
            return DistillationReport(
                objective=vars(goal),
                questions=teacher.n_questions,
                teacher_answers=len(teacher.examples),
                teacher_candidates=teacher.candidates,
                greedy_kept=teacher.greedy_kept,
                steered_answers=len(steered.examples) if steered else 0,
                self_steps=self.self_steps,
                self_kept=result.self_kept,
                heads=[list(h) for h in result.heads],
                chosen_step=step,
                history=result.history,
                validation=rows,
                comparison=comparison,
            )

        return FittedEdit(plan, rival, "mean-diff", report)

    @staticmethod
    def _learned(
        run: SteeringRun,
        stage: DistilledStage,
        rival,
        examples: list[TeacherExample],
        asked: TeacherStage,
    ) -> LearnedEdit:
        from gcm_edit.steering.distill import SelfTraining, learn_edit
        from gcm_edit.steering.learned_edit import LearnedEdit
        from gcm_edit.steering.vectors import HEAD_NORM

        heads = stage.heads
        head_norm = run.deltas[HEAD_NORM]

        def decode(data: dict) -> LearnedEdit:
            result = LearnedEdit(**{**data, "heads": [tuple(h) for h in data["heads"]]})
            if result.heads != heads or not result.snapshots:
                raise ValueError("an edit of other heads")
            return result

        on_policy = None
        if stage.on_policy_steps:
            on_policy = (stage.on_policy_steps, stage.decoding, stage.generation_batch)
        # the run's continuations depend only on the model and generation batch, both keyed
        held = run.continuations if stage.objective.neutral_continuations else None
        own = None
        if stage.self_steps:
            own = SelfTraining(
                stage.self_steps, asked.questions, stage.decoding, asked.candidates,
                stage.generation_batch, judged_good(run),
            )  # fmt: skip
        return run.cached(
            "distilled-{key}.json",
            "distilled edit",
            stage,
            lambda: learn_edit(
                run.model,
                run.tokenizer,
                examples,
                heads,
                rival.alpha * rival.vectors,
                head_norm[[h[0] for h in heads], [h[1] for h in heads]],
                stage.objective,
                stage.batch,
                on_policy,
                held,
                own,
            ),
            encode=vars,
            decode=decode,
            label="distilled edit",
        )
