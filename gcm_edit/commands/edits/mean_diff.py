"""`--edit mean-diff`: the paper's edit, α·δ on the top-k% heads, as chosen (commands/
strength.py); nothing is learned, so there is no rival and no report."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from gcm_edit.commands.edits.base import EditConfig, FittedEdit
from gcm_edit.commands.settings import Intervention

if TYPE_CHECKING:
    from gcm_edit.commands.steering_run import SteeringRun
    from gcm_edit.commands.strength import Strength


class MeanDiffConfig(EditConfig):
    """α·δ, the paper's mean difference, written as `--intervention` says."""

    kind: Literal["mean-diff"] = "mean-diff"
    intervention: Intervention = Field(
        "additive",
        description=(
            "additive: add α·δ (o_proj bias); scale: multiply each head by α (W_O); rank1: add "
            "α·δ times the head's activity relative to its mean (rank-1 W_O update, no bias)."
        ),
    )

    def start_intervention(self) -> str:
        return self.intervention

    def fit(self, run: SteeringRun, strength: Strength, settings) -> FittedEdit:
        return FittedEdit(strength.plan(run))
