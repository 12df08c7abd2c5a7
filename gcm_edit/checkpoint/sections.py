"""The manifest's sections that edit kinds build on (commands/edits/): torch-free, so the
command line can import every edit kind's config without loading a model library."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from gcm_edit.evaluation.plan_results import RATE_COLUMNS, PlanResult
from gcm_edit.evaluation.rates import Rate
from gcm_edit.tables import Column, ResultTable


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class PlanComparison(Section):
    """Held-out figures of one plan, for learned scales vs their uniform-α rival."""

    plan: str
    heads: int
    success: Rate
    concept: Rate
    fluent: Rate
    relevant: Rate
    kl: float


def comparison_table(title: str, learned: str, rows: list[PlanComparison]) -> ResultTable:
    """A learned plan (row "steered", shown as `learned`) against its rival, held-out."""
    columns = [
        Column("plan", lambda r: learned if r.plan == "steered" else r.plan),
        Column("heads", lambda r: r.heads),
        *RATE_COLUMNS,
        Column("KL(base ‖ steered)", lambda r: r.kl, ".4f"),
    ]
    return ResultTable(title, columns, rows)


class EditReport(Section):
    """How a learned edit was fitted, shown in the manifest, the console and the card. Each
    edit kind subclasses it (commands/edits/) with its own facts and card section; read back
    from a manifest alone, the extra facts are kept as they are."""

    model_config = ConfigDict(extra="allow")
    kind: str
    objective: dict
    chosen_step: int  # the snapshot kept (0: the start plan itself)
    history: list[dict]
    validation: list[PlanResult]  # each snapshot within the KL target, on validation
    comparison: list[PlanComparison]
    # what the checkpoint is, for a kind that does not edit GCM's ranked heads (the card's
    # first sentence and its Steering list then say this instead)
    intro: str | None = None
    title: ClassVar[str] = "The learned edit vs its start plan (held-out)"
    learned: ClassVar[str] = "learned edit"

    def table(self) -> ResultTable:
        return comparison_table(self.title, self.learned, self.comparison)

    def card_section(self) -> str:
        """The model card's section on this edit (markdown)."""
        return f"## Learned edit ({self.kind})\n\n{self.table().markdown()}\n\n"
