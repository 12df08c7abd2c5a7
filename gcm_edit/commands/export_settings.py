"""`gcm-edit export`'s settings: every option of the main job, and the checks across them
(options that cannot all hold are refused here, before any work). The mixins it is made of,
and every other command's settings, are in settings.py."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, model_validator

from gcm_edit.checkpoint.gguf import GgufType
from gcm_edit.commands.settings import (
    _HIDDEN,
    ALPHA_GRID,
    BUDGET_ALPHAS,
    DEFAULT_ALPHA,
    DEFAULT_K_PERCENT,
    DEFAULT_POSITIONS,
    DISTILL_KL,
    DOSES,
    K_GRID,
    MAX_ALPHA,
    Alpha,
    DistillSettings,
    Intervention,
    InterventionSettings,
    MethodSettings,
    OutputSettings,
    Percent,
    Positions,
    PositionsSettings,
    RankBy,
    RankSettings,
    ScaleLearningSettings,
    ScoringSettings,
    ValidationSettings,
)


# Mixins are listed last-first: the options' order in --help follows the reversed MRO.
class ExportSettings(
    OutputSettings,
    DistillSettings,
    ScaleLearningSettings,
    ValidationSettings,
    InterventionSettings,
    RankSettings,
    PositionsSettings,
    MethodSettings,
    ScoringSettings,
):
    cli_repeated: ClassVar[frozenset[str]] = frozenset({"concept"})

    k_percent: Percent | Literal["auto"] = Field(
        DEFAULT_K_PERCENT,
        description="Percent of all heads to steer, or auto (chosen on validation).",
        json_schema_extra={"flag": "k"},
    )
    alpha: Alpha | Literal["auto"] = Field(
        DEFAULT_ALPHA, description="Steering strength α, or auto (chosen on validation)."
    )
    auto_alphas: list[Alpha] = Field(
        ALPHA_GRID, min_length=1, description="α candidates for --alpha auto."
    )
    auto_ks: list[Percent] = Field(K_GRID, min_length=1, description="k% candidates for --k auto.")
    kl_budget: float | None = Field(
        None,
        gt=0,
        description="KL per neutral token the edit may cost. distilled: the learned edit is "
        f"held to it (default {DISTILL_KL:g}); mean-diff: instead of --k/--alpha/--positions/"
        "--rank-by/--intervention, the most successful plan on validation within it (with "
        "--learn-scales: their target).",
    )
    budget_alphas: list[Alpha] = Field(
        BUDGET_ALPHAS, min_length=1, description="α candidates for --kl-budget."
    )
    budget_positions: list[Positions] = Field(
        [DEFAULT_POSITIONS], min_length=1, description="δ positions candidates for --kl-budget."
    )
    budget_rank_by: list[RankBy] = Field(
        ["effect", "effect-per-kl"], min_length=1, description="Rankings for --kl-budget."
    )
    budget_interventions: list[Intervention] = Field(
        ["additive", "rank1"],
        min_length=1,
        description="Edits for --kl-budget (with --learn-scales: additive only).",
    )
    n_heldout: int | None = Field(
        None, ge=1, description="Evaluate on the first N held-out questions."
    )
    gguf: GgufType | None = Field(
        None,
        description="Also write model.gguf of this type (llama.cpp's converter), verified and "
        "judged on the held-out questions in llama.cpp.",
    )
    format: Literal["full", "adapter"] = Field(
        "full", description="full: standalone checkpoint; adapter: exact PEFT LoRA adapter."
    )
    doses: list[Annotated[float, Field(gt=0, le=MAX_ALPHA)]] = Field(
        DOSES,
        description="With --format adapter: held-out success and KL at these multiples of the "
        "edit (the LoRA scale a server sets), for the card's dose curve; '' for none.",
    )
    push_to_hub: str | None = Field(
        None, description="Upload the export to this hub repo (needs a token)."
    )
    # More concepts baked into the same checkpoint: `--concept` given again.
    compose: list[str] = Field([], json_schema_extra=_HIDDEN)
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

    @model_validator(mode="after")
    def _options_that_cannot_all_hold(self) -> ExportSettings:
        """Refused in one line naming both options, before any work (the user's value would
        otherwise be dropped, or the run fail at its end)."""
        if self.concept in self.compose:
            raise ValueError(f"--concept: {self.concept} is given twice")
        search = self.kl_budget is not None and self.edit == "mean-diff"
        chosen = ("k_percent", "alpha", "positions", "rank_by", "intervention")
        given = [name for name in chosen if name in self.model_fields_set]
        if search and given:
            raise ValueError(
                f"--kl-budget with --edit mean-diff chooses {self.flag(given[0])} itself on "
                f"validation: drop {self.flag(given[0])}, or drop --kl-budget"
            )
        budget = ("budget_alphas", "budget_positions", "budget_rank_by", "budget_interventions")
        self._given_without(budget, search, "--kl-budget and --edit mean-diff")
        self._given_without(("auto_alphas",), self.alpha == "auto", "--alpha auto")
        self._given_without(("auto_ks",), self.k_percent == "auto" or search, "--k auto")
        self._given_without(("doses",), self.format == "adapter", "--format adapter")
        self._given_without(("compose_disjoint",), bool(self.compose), "several --concept")
        if self.gguf and self.format == "adapter":
            raise ValueError("--gguf needs --format full (llama.cpp loads whole checkpoints)")
        if self.edit == "distilled":
            clash = [
                flag
                for flag, given in (
                    ("--learn-scales", self.learn_scales),
                    (f"--intervention {self.intervention}", self.intervention != "additive"),
                    ("several --concept", bool(self.compose)),
                )
                if given
            ]
            if clash:
                raise ValueError(
                    f"--edit distilled cannot be combined with {clash[0]}: the distilled edit "
                    "learns additive vectors and maps on the top-k% heads; use --edit "
                    "mean-diff for that option"
                )
        return self
