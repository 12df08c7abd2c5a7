"""`gcm-edit sweep`'s settings: the grid, and the learned scales it may add (their options
are `--edit scales`' own, commands/edits/scales.py)."""

from __future__ import annotations

from pydantic import Field, model_validator

from gcm_edit.commands.edits.scales import OLD_NAMES, ScalesConfig
from gcm_edit.commands.settings import (
    ALPHA_GRID,
    K_GRID,
    Alpha,
    Intervention,
    OutputSettings,
    Percent,
    PositionsSettings,
    RankBy,
    SweepMethod,
    ValidationSettings,
    WholeModelSettings,
)
from gcm_edit.commands.settings_base import flat_name


class SweepSettings(OutputSettings, ValidationSettings, PositionsSettings, WholeModelSettings):
    renamed = {**OLD_NAMES, "rank_by": ("rankings", None)}
    # "all" steers every head (k = 100%), the baseline a sparse selection must beat
    methods: list[SweepMethod] = Field(
        ["attribution", "probe", "random", "all"],
        min_length=1,
        description="Selection methods to compare (any --method, or all).",
    )
    rankings: list[RankBy] = Field(
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
    learn_scales: bool = Field(
        False,
        description="Add learned scales (as `export --edit scales`), from the best additive "
        "attribution plan, at no more KL.",
    )
    scales: ScalesConfig = Field(ScalesConfig(), json_schema_extra={"flatten": True})

    @model_validator(mode="after")
    def _learned_scales_need_their_start(self) -> SweepSettings:
        """Refused before any work, not after the whole grid."""
        given = sorted(self.scales.model_fields_set - {"kind"})
        if given and not self.learn_scales:
            flag = "--" + flat_name(ScalesConfig, given[0]).replace("_", "-")
            raise ValueError(f"{flag} is only read with --learn-scales: drop it, or add it")
        if self.learn_scales and not (
            "attribution" in self.methods and "additive" in self.interventions
        ):
            raise ValueError(
                "--learn-scales starts from the best additive attribution plan: add attribution "
                "to --methods and additive to --interventions"
            )
        return self
