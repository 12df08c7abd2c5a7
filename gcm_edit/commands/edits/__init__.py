"""Edit kinds: what `--edit` selects. Each kind is one module with its config (its options),
its fit (run, strength → plan, rival, report) and its card section; adding one is a module
and a line here. `export` never names a kind."""

from __future__ import annotations

from typing import Annotated, Union

from pydantic import Field

from gcm_edit.commands.edits.base import EditConfig, FittedEdit
from gcm_edit.commands.edits.caa import CaaConfig
from gcm_edit.commands.edits.distilled import DistilledConfig
from gcm_edit.commands.edits.mean_diff import MeanDiffConfig
from gcm_edit.commands.edits.scales import ScalesConfig

# the registry: one entry per kind
KINDS = (DistilledConfig, MeanDiffConfig, ScalesConfig, CaaConfig)
AnyEdit = Annotated[Union[KINDS], Field(discriminator="kind")]  # noqa: UP007

__all__ = ["KINDS", "AnyEdit", "EditConfig", "FittedEdit"]
