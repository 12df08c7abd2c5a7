"""`gcm-edit export`'s settings: every option of the main job, and the checks across them
(options that cannot all hold are refused here, before any work). The edit's own options
belong to its kind (commands/edits/); the mixins are in settings.py."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, model_validator

from gcm_edit.checkpoint.gguf import GgufType
from gcm_edit.commands.edits import AnyEdit
from gcm_edit.commands.edits.distilled import DistilledConfig
from gcm_edit.commands.edits.scales import OLD_NAMES
from gcm_edit.commands.settings import (
    ALPHA_GRID,
    DEFAULT_ALPHA,
    DEFAULT_K_PERCENT,
    DEFAULT_POSITIONS,
    DISTILL_KL,
    DOSES,
    K_GRID,
    MAX_ALPHA,
    Alpha,
    Intervention,
    MethodSettings,
    OutputSettings,
    Percent,
    Positions,
    PositionsSettings,
    RankBy,
    RankSettings,
    ValidationSettings,
    WholeModelSettings,
)
from gcm_edit.commands.settings_base import HIDDEN, WRITTEN


# Mixins are listed last-first: the options' order in --help follows the reversed MRO.
class ExportSettings(
    OutputSettings,
    ValidationSettings,
    RankSettings,
    PositionsSettings,
    MethodSettings,
    WholeModelSettings,
):
    cli_repeated: ClassVar[frozenset[str]] = frozenset({"concept"})
    renamed: ClassVar[dict[str, tuple[str, Any]]] = {
        "learn_scales": ("edit", "scales"),
        "auto_alphas": ("alphas", None),
        "budget_alphas": ("alphas", None),
        "auto_ks": ("ks", None),
        "budget_positions": ("positions_grid", None),
        "budget_rank_by": ("rankings", None),
        "budget_interventions": ("interventions", None),
        **OLD_NAMES,
    }

    edit: AnyEdit = Field(
        DistilledConfig(),
        description="distilled: the heads' edit learned from the model asked with the "
        "directive (context distillation); mean-diff: α·δ, the paper's mean difference; "
        "scales: a learned scale per head of the mean-difference plan; caa: one "
        "residual-stream vector at one layer (the usual baseline, GCM's ranking unused).",
        json_schema_extra={"flatten": True},
    )
    k_percent: Percent | Literal["auto"] = Field(
        DEFAULT_K_PERCENT,
        description="Percent of all heads to steer, or auto (chosen on validation).",
        json_schema_extra={"flag": "k"},
    )
    alpha: Alpha | Literal["auto"] = Field(
        DEFAULT_ALPHA, description="Steering strength α, or auto (chosen on validation)."
    )
    alphas: list[Alpha] = Field(
        ALPHA_GRID,
        min_length=1,
        description="α candidates for --alpha auto and --kl-budget (--edit caa: its c).",
    )
    ks: list[Percent] = Field(
        K_GRID, min_length=1, description="k% candidates for --k auto and --kl-budget."
    )
    kl_budget: float | None = Field(
        None,
        gt=0,
        description="KL per neutral token the edit may cost. distilled: the learned edit is "
        f"held to it (default {DISTILL_KL:g}); mean-diff and scales: instead of --k/--alpha/"
        "--positions/--rank-by/--intervention, the most successful plan on validation within "
        "it (scales: also their target).",
    )
    positions_grid: list[Positions] = Field(
        [DEFAULT_POSITIONS], min_length=1, description="δ positions candidates for --kl-budget."
    )
    rankings: list[RankBy] = Field(
        ["effect", "effect-per-kl"], min_length=1, description="Rankings for --kl-budget."
    )
    interventions: list[Intervention] = Field(
        ["additive", "rank1"],
        min_length=1,
        description="Edits for --kl-budget with --edit mean-diff.",
    )
    n_heldout: int | None = Field(
        None, ge=1, description="Evaluate on the first N held-out questions."
    )
    gguf: GgufType | None = Field(
        None,
        description="Also write model.gguf of this type (llama.cpp's converter), verified and "
        "judged on the held-out questions in llama.cpp.",
        json_schema_extra=WRITTEN,
    )
    format: Literal["full", "adapter"] = Field(
        "full",
        description="full: standalone checkpoint; adapter: exact PEFT LoRA adapter.",
        json_schema_extra=WRITTEN,
    )
    doses: list[Annotated[float, Field(gt=0, le=MAX_ALPHA)]] = Field(
        DOSES,
        description="With --format adapter: held-out success and KL at these multiples of the "
        "edit (the LoRA scale a server sets), for the card's dose curve; '' for none.",
        json_schema_extra=WRITTEN,
    )
    push_to_hub: str | None = Field(
        None,
        description="Upload the export to this hub repo (needs a token).",
        json_schema_extra=WRITTEN,
    )
    # More concepts baked into the same checkpoint: `--concept` given again.
    compose: list[str] = Field([], json_schema_extra=HIDDEN)
    compose_disjoint: bool = Field(
        True,
        description="With several --concept: each takes the best heads no earlier one steers.",
    )

    @model_validator(mode="before")
    @classmethod
    def _first_concept_then_composed(cls, data: Any) -> Any:
        """`--concept A --concept B`: A is the run's concept, B is composed into it."""
        concepts = data.get("concept") if isinstance(data, dict) else None
        if isinstance(concepts, list):
            data = {**data, "concept": concepts[0], "compose": concepts[1:]}
        return data

    @property
    def searches(self) -> bool:
        """`--kl-budget` chooses the start plan on validation (not for a budget-held edit)."""
        return self.kl_budget is not None and not self.edit.budget_is_target

    @model_validator(mode="after")
    def _options_that_cannot_all_hold(self) -> ExportSettings:
        """Refused in one line naming both options, before any work (the user's value would
        otherwise be dropped, or the run fail at its end)."""
        if self.concept in self.compose:
            raise ValueError(f"--concept: {self.concept} is given twice")
        chosen = ("k_percent", "alpha", "positions", "rank_by")
        given = [self.flag(name) for name in chosen if name in self.model_fields_set]
        if "intervention" in self.edit.model_fields_set:
            given.append("--intervention")
        if self.searches and given:
            raise ValueError(
                f"--kl-budget with --edit {self.edit.kind} chooses {given[0]} itself on "
                f"validation: drop {given[0]}, or drop --kl-budget"
            )
        grids = ("positions_grid", "rankings", "interventions")
        self._given_without(grids, self.searches, "--kl-budget and --edit mean-diff or scales")
        if "interventions" in self.model_fields_set and self.edit.kind != "mean-diff":
            raise ValueError("--interventions is only read with --edit mean-diff")
        alphas_read = self.alpha == "auto" or self.searches or self.edit.reads_alphas
        self._given_without(("alphas",), alphas_read, "--alpha auto, --kl-budget or --edit caa")
        ks_read = self.k_percent == "auto" or self.searches
        self._given_without(("ks",), ks_read, "--k auto or --kl-budget")
        self._given_without(("doses",), self.format == "adapter", "--format adapter")
        self._given_without(("compose_disjoint",), bool(self.compose), "several --concept")
        if self.format == "adapter" and (option := self.edit.full_only()):
            raise ValueError(f"{option} needs --format full: a PEFT adapter edits o_proj only")
        if self.gguf and self.format == "adapter":
            raise ValueError("--gguf needs --format full (llama.cpp loads whole checkpoints)")
        if self.compose and self.edit.kind != "mean-diff":
            raise ValueError(
                f"--edit {self.edit.kind} cannot be combined with several --concept (yet): "
                "composition bakes mean-difference plans; use --edit mean-diff"
            )
        return self
