"""What every edit kind is: a typed config that fits a plan on a run (PEFT's tuner pattern:
a config class per kind, registered once in `edits/__init__.py`; export, the manifest and
the card are generic over them)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from pydantic import BaseModel, ConfigDict

from gcm_edit.checkpoint.sections import EditReport, PlanComparison

if TYPE_CHECKING:
    from gcm_edit.commands.export_settings import ExportSettings
    from gcm_edit.commands.steering_run import SteeringRun
    from gcm_edit.commands.strength import Strength
    from gcm_edit.steering.plan import SteeringPlan


@dataclass(frozen=True)
class FittedEdit:
    """The plan an edit kind chose, and the rival it is reported against (held-out and KL)."""

    plan: SteeringPlan
    rival: SteeringPlan | None = None
    rival_name: str = ""
    report: Callable[[list[PlanComparison]], EditReport] | None = None


class EditConfig(BaseModel):
    """One edit kind's options (its `kind` tags the union `--edit` selects)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    kind: str
    # True: `--kl-budget` is the learned edit's KL target and the start plan is as given;
    # False: `--kl-budget` also chooses the start plan on validation (commands/strength.py)
    budget_is_target: ClassVar[bool] = False

    def start_intervention(self) -> str:
        """How the start plan writes into a head; learned edits start from α·δ."""
        return "additive"

    def written_as(self, start: str) -> str:
        """What the manifest calls the plan's edit (`steering.intervention`)."""
        return start

    def fit(self, run: SteeringRun, strength: Strength, settings: ExportSettings) -> FittedEdit:
        raise NotImplementedError
