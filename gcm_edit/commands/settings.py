"""One typed settings object per command. Every default and every option's help is written
here once: the command line is generated from these fields (gcm_edit/cli/options.py).

A field's `description` is its `--help` text; `json_schema_extra` may rename the flag
(`flag`), hide it from the command line (`cli: False`) or make it the positional
argument (`argument: True`). Classes are mixins, so each command holds only what it uses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from gcm_edit.inputs.default_model import DEFAULT_MODEL
from gcm_edit.inputs.recipe import MAX_NEW_TOKENS
from gcm_edit.scoring.runtime import ScoringRuntime

Positions = Literal["prompt", "response", "all"]
Intervention = Literal["additive", "scale", "rank1"]
Method = Literal["attribution", "activation", "paper", "knockout", "probe", "random"]
SweepMethod = Method | Literal["all"]
# effect: the method's score; effect-per-kl: score / √(the head's KL alone), collateral-aware
RankBy = Literal["effect", "effect-per-kl"]
Percent = Annotated[float, Field(gt=0, le=100)]
# `--out '~/x'` (quoted, so the shell left the ~) means the home folder, not a folder named ~
UserPath = Annotated[Path, AfterValidator(Path.expanduser)]
# Steering strength: α·δ is on the scale of a head's own output near α = 1; far beyond 100
# the model breaks whatever the plan (and very large values overflow when baked).
MAX_ALPHA = 100.0
Alpha = Annotated[float, Field(gt=0, le=MAX_ALPHA)]
Strategy = Literal["auto", "ddp", "fsdp"]
Runtime = Literal["transformers", "llama.cpp"]
Precision = Literal["auto", "32-true", "bf16-mixed"]

# Chosen on the verse recipe's validation split with `gcm-edit calibrate` (docs/results.md):
# response/α=1 scored 36% [25–48], all/α=2 33% [23–45], at KL 1.18 against 1.76.
DEFAULT_POSITIONS: Positions = "response"
DEFAULT_ALPHA = 1.0
DEFAULT_K_PERCENT = 5.0  # the paper's headline: ≥80% success steering ≤5% of heads
ALPHA_GRID = [1.0, 2.0, 3.0, 4.0]  # α candidates: calibrate, sweep, --alpha auto
K_GRID = [1.0, 2.0, 5.0, 10.0]  # k% candidates: sweep, --k auto (the paper sweeps 1-10%)
BUDGET_ALPHAS = [0.5, 1.0, 2.0, 3.0]  # a KL budget favours weak pushes: α below 1 too
DISTILL_KL = 0.5  # the distilled edit's KL target without --kl-budget (issue target: ≤ 0.5)
# Past this a batch size is a typo, not a setting: no device holds 4096 sequences at once.
MAX_BATCH = 4096
DOSES = [0.5, 1.5, 2.0]  # adapter dose curve; 0 (the base) and 1 (the export) are measured anyway
_RUNTIME = ScoringRuntime()
_HIDDEN: Any = {"cli": False}


class Settings(BaseModel):
    # NaN and inf are refused as such ("finite number"), before any range check
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    # Fields given as a repeatable option on the command line (a list in, see validators).
    cli_repeated: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def flag(cls, name: str) -> str:
        """The command-line flag of field `name` (`k_percent` is `--k`)."""
        extra = cls.model_fields[name].json_schema_extra
        renamed = extra.get("flag", name) if isinstance(extra, dict) else name
        return "--" + renamed.replace("_", "-")

    @model_validator(mode="after")
    def _no_repeats(self) -> Settings:
        """`--doses 2,2`: a list option's item given twice is a typo, never a request."""
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, list):
                twice = [v for i, v in enumerate(value) if v in value[:i]]
                if twice:
                    shown = f"{twice[0]:g}" if isinstance(twice[0], float) else twice[0]
                    raise ValueError(f"{self.flag(name)}: {shown} is given twice")
        return self

    def _given_without(self, fields: tuple[str, ...], needed: bool, needs: str) -> None:
        """Refuse options the user gave (not defaults) that this run would not read."""
        given = [name for name in fields if name in self.model_fields_set]
        if given and not needed:
            raise ValueError(
                f"{self.flag(given[0])} is only read with {needs}: drop it, or add {needs}"
            )


class ModelSettings(Settings):
    """Which model, where it runs, how many sequences at once."""

    model: str = Field(
        DEFAULT_MODEL,
        description="HF hub id, local HF folder or .gguf file; default: the built-in model.",
    )
    device: str = Field("auto", description="auto, cpu, cuda, cuda:1, ...")
    trust_remote_code: bool = Field(
        False, description="Allow the model's own Python code (unsafe)."
    )
    batch_size: int = Field(
        _RUNTIME.batch_size,
        ge=1,
        le=MAX_BATCH,
        description="Pairs per step for δ, scores and learned scales.",
    )
    # 32: greedy generation 1.9× faster than at 8 on 2 CPU cores (docs/results.md)
    generation_batch: int = Field(
        32, ge=1, le=MAX_BATCH, description="Sequences per generation and per judging forward."
    )


class ConceptSettings(ModelSettings):
    """What a run answers and judges: the concept's recipe, answer length, the judge."""

    concept: str = Field("verse", description="Built-in concept name or path to a recipe .yaml.")
    max_new_tokens: int | None = Field(
        None, ge=1, le=MAX_NEW_TOKENS, description="New tokens per answer (default: the recipe's)."
    )
    judge_url: str | None = Field(
        None,
        description="OpenAI-compatible endpoint judging the concept (default: offline judge).",
    )
    judge_model: str = Field("judge", description="Model name sent to --judge-url.")
    prompt_format: Literal["auto", "chat", "base"] = Field(
        "auto",
        description="chat: the model's chat template; base: the recipe's base_prompt; "
        "auto: chat when the model has a template.",
    )


class ScoringSettings(ConceptSettings):
    """Contrastive pairs, δ and head scores: what every steering command computes."""

    n_train: int | None = Field(None, ge=1, description="Use only the first N training questions.")
    head_batch: int = Field(
        _RUNTIME.head_batch,
        ge=1,
        le=MAX_BATCH,
        description="Heads patched per forward (activation, knockout).",
    )
    seed: int = Field(
        _RUNTIME.seed,
        ge=0,
        lt=2**63,
        description="Seed for --method random, probe folds and learned edits.",
    )
    devices: int = Field(
        _RUNTIME.devices, ge=1, le=1024, description="Devices (processes) that score in parallel."
    )
    strategy: Strategy = Field(
        "auto",
        description="Lightning strategy: ddp copies the model to each device, fsdp shards it "
        "(FSDP2; CPUs too; `gcm-edit score` only).",
    )
    precision: Precision = Field(
        "auto", description="auto: bf16-mixed on a GPU with bf16, else 32-true."
    )
    activation_checkpointing: bool = Field(
        _RUNTIME.activation_checkpointing,
        description="Recompute each layer in the scoring backward pass: memory of one "
        "layer's activations instead of all, about 20% more time.",
    )

    def runtime(self) -> ScoringRuntime:
        return ScoringRuntime(**self.model_dump(include=set(ScoringRuntime.__dataclass_fields__)))


class MethodSettings(Settings):
    method: Method = Field("attribution", description="How heads are scored and ranked.")


class PositionsSettings(Settings):
    positions: Positions = Field(DEFAULT_POSITIONS, description="Positions δ averages over.")


class InterventionSettings(Settings):
    intervention: Intervention = Field(
        "additive",
        description=(
            "additive: add α·δ (o_proj bias); scale: multiply each head by α (W_O); rank1: add "
            "α·δ times the head's activity relative to its mean (rank-1 W_O update, no bias)."
        ),
    )


class RankSettings(Settings):
    rank_by: RankBy = Field(
        "effect",
        description="effect: heads by score; effect-per-kl: by score / √(KL of the head "
        "steered alone on neutral prompts), the cheapest carriers of the concept first.",
    )


class ValidationSettings(Settings):
    n_validation: int | None = Field(
        None, ge=1, description="Use only the first N validation questions."
    )


class OutputSettings(Settings):
    out: UserPath | None = Field(
        None, description="Output folder (default: checkpoints/<model>-<concept>...)."
    )
    force: bool = Field(False, description="Replace an existing output folder.")


class ScaleLearningSettings(ValidationSettings):
    """Learned per-head scales (steering/scales.py, commands/learned.py); snapshots are
    measured on the validation split."""

    learn_scales: bool = Field(
        False,
        description="Learn a steering scale per head, from the best uniform plan (export) or "
        "the best attribution plan (sweep), at no more KL.",
    )
    scale_candidates: Percent = Field(
        10.0, description="Candidate heads for --learn-scales: top % by score."
    )
    scale_steps: int = Field(40, ge=1, description="Optimiser steps (--learn-scales).")
    scale_lr: float = Field(0.05, gt=0, description="Adam learning rate (--learn-scales).")
    lambda_f: float = Field(
        1.0, ge=0, description="Starting weight of KL (a multiplier holds KL to its target)."
    )
    scale_eval_every: int = Field(
        10, ge=1, description="Steps between snapshots measured on validation (--learn-scales)."
    )
    lambda_m: float = Field(0.5, ge=0, description="Weight of the L1 term.")
    learn_head_scale: bool = Field(
        False, description="Also learn s scaling each head's own output (z ← s·z + α·c·δ)."
    )

    @model_validator(mode="after")
    def _scale_options_need_learning(self) -> ScaleLearningSettings:
        options = ("scale_candidates", "scale_steps", "scale_lr", "lambda_f", "scale_eval_every")
        options += ("lambda_m", "learn_head_scale")
        self._given_without(options, self.learn_scales, "--learn-scales")
        return self


Edit = Literal["mean-diff", "distilled"]


class DistillSettings(ValidationSettings):
    """`--edit distilled` (steering/distill.py, commands/distilled.py); snapshots are
    measured on the validation split."""

    # distilled: held-out verse success 48% [39–56] against mean-diff's 30% [22–38] on the
    # default model, at a tenth of the KL (docs/results.md)
    edit: Edit = Field(
        "distilled",
        description="distilled: the heads' edit learned from the model asked with the "
        "directive (context distillation); mean-diff: α·δ, the paper's mean difference.",
    )
    edit_rank: int = Field(
        4, ge=0, le=64, description="Rank of each head's learned map A_h (0: vectors only)."
    )
    # 80 steps of 4 answers: ~4.5 min on 2 CPU cores for the default model (3.3 s a step)
    edit_steps: int = Field(80, ge=1, description="Optimiser steps of the distilled edit.")
    edit_batch: int = Field(4, ge=1, description="Teacher answers per distillation step.")
    edit_on_policy_steps: int = Field(
        0,
        ge=0,
        description="Then this many steps on the student's own answers, scored by the "
        "teacher (on-policy); early stopping keeps them only if they win on validation.",
    )
    edit_lr: float = Field(
        0.05, gt=0, description="Adam step of the distilled edit, relative to a head's output."
    )
    edit_eval_every: int = Field(
        40, ge=1, description="Steps between distilled snapshots measured on validation."
    )
    distill_questions: int = Field(
        128, ge=1, description="Distillation questions the prompted model answers."
    )
    teacher_candidates: int = Field(
        3, ge=1, description="Answers per distillation question at most (greedy, then samples)."
    )

    @model_validator(mode="after")
    def _edit_options_need_distilled(self) -> DistillSettings:
        options = ("edit_rank", "edit_steps", "edit_batch", "edit_on_policy_steps", "edit_lr")
        options += ("edit_eval_every", "distill_questions", "teacher_candidates")
        self._given_without(options, self.edit == "distilled", "--edit distilled")
        return self


class ScoreSettings(OutputSettings, PositionsSettings, MethodSettings, ScoringSettings):
    k_percent: Percent = Field(
        DEFAULT_K_PERCENT,
        description="Percent of heads to list and box in the heatmap.",
        json_schema_extra={"flag": "k"},
    )


class SweepSettings(
    OutputSettings, ScaleLearningSettings, ValidationSettings, PositionsSettings, ScoringSettings
):
    # "all" steers every head (k = 100%), the baseline a sparse selection must beat
    methods: list[SweepMethod] = Field(
        ["attribution", "probe", "random", "all"],
        min_length=1,
        description="Selection methods to compare (any --method, or all).",
    )
    rank_by: list[RankBy] = Field(
        ["effect", "effect-per-kl"],
        min_length=1,
        description="Rankings to compare (effect-per-kl for methods whose score is an effect "
        "of δ: attribution, activation).",
    )
    interventions: list[Intervention] = Field(
        ["additive"], min_length=1, description="Edits to compare (additive, scale, rank1)."
    )
    ks: list[Percent] = Field(K_GRID, min_length=1, description="k% grid.")
    alphas: list[Alpha] = Field(ALPHA_GRID, min_length=1, description="α grid.")


class CalibrateSettings(ValidationSettings, InterventionSettings, MethodSettings, ScoringSettings):
    k_percent: Percent = Field(
        DEFAULT_K_PERCENT,
        description="Percent of all heads to steer.",
        json_schema_extra={"flag": "k"},
    )
    alphas: list[Alpha] = Field(ALPHA_GRID, min_length=1, description="α grid.")
    positions_grid: list[Positions] = Field(
        ["prompt", "response", "all"], min_length=1, description="δ positions grid."
    )
    out: UserPath = Field(Path("calibration.csv"), description="CSV to write.")


class EvalSettings(ConceptSettings):
    """`model` is the model under evaluation (an export folder, the base, any HF model)."""

    model: str = Field(
        description="An export folder, any HF folder, or a model id.",
        json_schema_extra={"argument": True},
    )
    base: str | None = Field(
        None,
        description="Reference for fluency and KL (default: gcm_edit.json's base, else MODEL).",
    )
    split: Literal["heldout", "validation"] = Field("heldout", description="Which questions.")
    n_questions: int | None = Field(None, ge=1, description="Use only the first N questions.")
    samples: int = Field(3, ge=0, description="Sample answers to print.")
    out: UserPath | None = Field(None, description="Also write the report as JSON.")
    runtime: Runtime = Field(
        "transformers",
        description="Who answers: transformers, or llama.cpp running MODEL/model.gguf "
        "(MODEL an export folder; no retention KL: llama.cpp gives no full distributions).",
    )


class VerifySettings(Settings):
    folder: UserPath = Field(
        description="An exported checkpoint folder.", json_schema_extra={"argument": True}
    )
    base: str | None = Field(
        None, description="Base model (default: the one named in gcm_edit.json)."
    )
    runtime: Runtime = Field(
        "transformers",
        description="transformers: the folder's weights; llama.cpp: its model.gguf.",
    )
