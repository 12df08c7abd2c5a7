"""One typed settings object per command. Every default and every option's help is written
here once: the command line is generated from these fields (gcm_edit/cli/options.py).

A field's `description` is its `--help` text; `json_schema_extra` may rename the flag
(`flag`), hide it from the command line (`cli: False`) or make it the positional
argument (`argument: True`). Classes are mixins, so each command holds only what it uses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, Field, model_validator

from gcm_edit.commands.settings_base import WRITTEN, Settings, unmeasured
from gcm_edit.errors import GcmEditError
from gcm_edit.inputs.default_model import DEFAULT_MODEL
from gcm_edit.inputs.gguf import gguf_file
from gcm_edit.inputs.recipe import MAX_NEW_TOKENS
from gcm_edit.scoring.runtime import ScoringRuntime

Positions = Literal["prompt", "response", "all"]
Intervention = Literal["additive", "scale", "rank1"]
Method = Literal[
    "attribution", "activation", "paper", "knockout", "probe", "distillation", "random"
]
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

# The default edit's start α·δ, chosen on the verse recipe's validation split by the distilled
# edit's own success (docs/results.md#defaults-on-validation-2026-12-06).
DEFAULT_POSITIONS: Positions = "response"
DEFAULT_ALPHA = 0.5
# 8 of the default model's 270 heads (3 of Gemma 3 270M's 72): the distilled edit beats 14 on
# 256 validation questions at every seed (docs/results.md#where-causal-selection-pays)
DEFAULT_K_PERCENT = 2.96
# α candidates of calibrate, sweep, --alpha auto and --kl-budget (a budget favours weak
# pushes: α below 1 too)
ALPHA_GRID = [0.5, 1.0, 2.0, 3.0, 4.0]
K_GRID = [1.0, 2.0, 5.0, 10.0]  # k% candidates: sweep, --k auto (the paper sweeps 1-10%)
DISTILL_KL = 0.5  # the distilled edit's KL target without --kl-budget (issue target: ≤ 0.5)
# Past this a batch size is a typo, not a setting: no device holds 4096 sequences at once.
MAX_BATCH = 4096
DOSES = [0.5, 1.5, 2.0]  # adapter dose curve; 0 (the base) and 1 (the export) are measured anyway
_RUNTIME = ScoringRuntime()


class ModelSettings(Settings):
    """Which model, where it runs, how many sequences at once."""

    model: str = Field(
        DEFAULT_MODEL,
        description="HF hub id, local HF folder or .gguf file; default: the built-in model.",
        json_schema_extra=unmeasured("keyed by content: the model's fingerprint"),
    )
    renamed: ClassVar[dict[str, tuple[str, Any]]] = {"device": ("accelerator", None)}

    accelerator: str = Field(
        "auto",
        description="Where the model runs: auto, cpu, cuda, cuda:1, mps (--devices: how many "
        "processes score).",
    )
    trust_remote_code: bool = Field(
        False, description="Allow the model's own Python code (unsafe)."
    )
    batch_size: int = Field(
        _RUNTIME.batch_size,
        ge=1,
        le=MAX_BATCH,
        description="Sequences per forward pass: pairs per step for δ, scores and learned "
        "scales; answers per judging, KL and collateral batch.",
    )
    # 128: 1.4× the tokens/s of 32 on 2 CPU cores, same greedy answers
    # (docs/results.md#which-engine-generates-2026-12-07)
    generation_batch: int = Field(
        128,
        ge=1,
        le=MAX_BATCH,
        description="Sequences per greedy generation (teacher and student samples: "
        "32 a batch, part of what --seed draws).",
    )


class ConceptSettings(ModelSettings):
    """What a run answers and judges: the concept's recipe, answer length, the judge."""

    concept: str = Field(
        "verse",
        description="Built-in concept name or path to a recipe .yaml.",
        json_schema_extra=unmeasured("keyed by content: the recipe's sha256"),
    )
    max_new_tokens: int | None = Field(
        None, ge=1, le=MAX_NEW_TOKENS, description="New tokens per answer (default: the recipe's)."
    )
    judge_url: str | None = Field(
        None,
        description="OpenAI-compatible endpoint judging the concept (default: offline judge).",
    )
    judge_model: str | None = Field(
        None,
        description="With --judge-url: the model name sent (default: judge). Alone: a local "
        ".gguf file that judges in llama.cpp, asked the same yes/no question.",
    )
    prompt_format: Literal["auto", "chat", "base"] = Field(
        "auto",
        description="chat: the model's chat template; base: the recipe's base_prompt; "
        "auto: chat when the model has a template.",
    )

    @model_validator(mode="after")
    def _local_judge(self) -> ConceptSettings:
        """Without --judge-url, --judge-model is a GGUF file: checked before any work."""
        if self.judge_model and not self.judge_url:
            try:
                gguf_file(Path(self.judge_model).expanduser(), "--judge-model")
            except GcmEditError as exc:
                raise ValueError(str(exc)) from None
        return self


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
        description="Seed for --method random, probe folds, learned edits and teacher samples.",
        json_schema_extra=unmeasured("what a spread is taken over"),
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


class WholeModelSettings(ScoringSettings):
    """Commands that go on to generate and bake: they need the whole model in one process."""

    @model_validator(mode="after")
    def _unsharded(self) -> WholeModelSettings:
        if self.strategy == "fsdp":
            raise ValueError(
                "--strategy fsdp shards the model, which the later stages cannot use; score "
                "first with `gcm-edit score --strategy fsdp` (same settings): this command "
                "reuses the scores"
            )
        return self


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
        None,
        description="Output folder (default: checkpoints/<model>-<concept>...).",
        json_schema_extra=WRITTEN,
    )
    force: bool = Field(
        False, description="Replace an existing output folder.", json_schema_extra=WRITTEN
    )


class ScoreSettings(OutputSettings, PositionsSettings, MethodSettings, ScoringSettings):
    k_percent: Percent = Field(
        DEFAULT_K_PERCENT,
        description="Percent of heads to list and box in the heatmap.",
        json_schema_extra={"flag": "k"},
    )


class CalibrateSettings(
    ValidationSettings, InterventionSettings, MethodSettings, WholeModelSettings
):
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
    force: bool = Field(False, description="Replace an existing --out file.")


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
    force: bool = Field(False, description="Replace an existing --out file.")
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
