"""What every edit kind is: a typed config that fits a plan on a run (PEFT's tuner pattern:
a config class per kind, registered once in `edits/__init__.py`; export, the manifest and
the card are generic over them)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from gcm_edit.checkpoint.sections import EditReport, PlanComparison

if TYPE_CHECKING:
    from gcm_edit.commands.export_settings import ExportSettings
    from gcm_edit.commands.steering_run import SteeringRun
    from gcm_edit.commands.strength import Strength
    from gcm_edit.steering.plan import SteeringPlan


def flag(name: str) -> dict:
    """A nested option's command-line name (`--edit-rank`), given as its field's extra."""
    return {"flag": name}


# Options every learned edit reads, under one flag and one description each.
LEARNED = {
    "steps": ("edit-steps", "Optimiser steps of the learned edit.", {"ge": 1}),
    "lr": ("edit-lr", "Adam step of the learned edit.", {"gt": 0}),
    "eval_every": ("edit-eval-every", "Steps between snapshots measured on validation.", {"ge": 1}),
    "lambda_f": (
        "lambda-f",
        "Starting weight of KL (a multiplier holds KL to its target).",
        {"ge": 0},
    ),
}


def learned_option(name: str, default: Any) -> Any:
    """Field `name` of LEARNED with this edit's default."""
    option, description, bounds = LEARNED[name]
    return Field(default, description=description, json_schema_extra=flag(option), **bounds)


@dataclass(frozen=True)
class FittedEdit:
    """The plan an edit kind chose, and the rival it is reported against (held-out and KL)."""

    plan: SteeringPlan
    rival: SteeringPlan | None = None
    rival_name: str = ""
    report: Callable[[list[PlanComparison]], EditReport] | None = None
    # the manifest's steering facts (positions, rank_by, k_percent) where the plan is not
    # the start plan's heads (steering_info in commands/export_manifest.py)
    steering: dict = field(default_factory=dict)


class EditConfig(BaseModel):
    """One edit kind's options (its `kind` tags the union `--edit` selects)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    kind: str
    # True: `--kl-budget` is the learned edit's KL target and the start plan is as given;
    # False: `--kl-budget` also chooses the start plan on validation (commands/strength.py)
    budget_is_target: ClassVar[bool] = False
    reads_alphas: ClassVar[bool] = False  # True: the kind searches the `--alphas` grid itself

    def check(self, run: SteeringRun) -> None:
        """Refusals that need the model's shape (its config only: before any work)."""

    def full_only(self) -> str | None:
        """The option given that only a full checkpoint can carry (a PEFT adapter edits
        o_proj alone), if any."""
        return None

    def start_intervention(self) -> str:
        """How the start plan writes into a head; learned edits start from α·δ."""
        return "additive"

    def written_as(self, start: str) -> str:
        """What the manifest calls the plan's edit (`steering.intervention`)."""
        return start

    def fit(self, run: SteeringRun, strength: Strength, settings: ExportSettings) -> FittedEdit:
        raise NotImplementedError
