"""What an export steers with: α, k%, δ positions and head ranking, as given or chosen on the
validation split (`--alpha auto`, `--k auto`, `--kl-budget`), never on the held-out one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from gcm_edit.checkpoint.manifest import Selection
from gcm_edit.commands.candidates import choose_alpha_k, search_budget
from gcm_edit.commands.steering_run import SteeringRun
from gcm_edit.console import console
from gcm_edit.evaluation.plan_results import results_table, separation_note
from gcm_edit.steering.plan import SteeringPlan
from gcm_edit.tables import print_tables

if TYPE_CHECKING:
    from gcm_edit.commands.export_settings import ExportSettings


@dataclass(frozen=True)
class Strength:
    """The plan's parameters and how they were chosen (the manifest's `selection`)."""

    alpha: float
    k_percent: float
    positions: str
    rank_by: str
    method: str
    intervention: str
    selection: Selection

    def plan(self, run: SteeringRun, exclude: frozenset = frozenset()) -> SteeringPlan:
        """The plan on `run`'s scores; `exclude`: heads it may not take (composition)."""
        return run.plan(
            self.positions,
            self.alpha,
            self.k_percent,
            self.method,
            self.intervention,
            self.rank_by,
            exclude,
        )


def choose_strength(run: SteeringRun, s: ExportSettings) -> Strength:
    """As given; or the best on the validation split: under `--kl-budget` (unless the edit
    is held to it instead) over positions × ranking × edit × k% × α (the options for those
    are then not read), with "auto" over α × k%."""
    asked = Selection(alpha=s.alpha, k_percent=s.k_percent, kl_budget=s.kl_budget)
    intervention = s.edit.start_intervention()
    if not s.searches and "auto" not in (s.alpha, s.k_percent):
        return Strength(s.alpha, s.k_percent, s.positions, s.rank_by, s.method, intervention, asked)
    if s.searches:
        grid = {
            "positions": s.positions_grid,
            "rank_by": s.rankings,
            "intervention": s.interventions if s.edit.kind == "mean-diff" else ["additive"],
            "k_percent": s.ks,
            "alpha": s.alphas,
        }
        top, rows = search_budget(run, s.kl_budget, s.method, grid, s.n_validation)
        what = f"within KL {s.kl_budget:g}"
    else:
        alphas = s.alphas if s.alpha == "auto" else [s.alpha]
        ks = s.ks if s.k_percent == "auto" else [s.k_percent]
        top, rows = choose_alpha_k(
            run, s.positions, s.method, intervention, alphas, ks, s.n_validation, s.rank_by
        )
        what = "on validation"
    print_tables(results_table(f"{run.recipe.name}: choosing on the validation split", rows))
    console.print(
        f"chosen {what}: {top.positions}, {top.rank_by}, {top.intervention}, α={top.alpha}, "
        f"k={top.k_percent}% "
        f"(success {top.success}, KL {top.kl:.4f})"
    )
    if note := separation_note(rows, "candidate"):
        console.print(f"[yellow]note:[/] {note}")
    chosen = {
        "alpha": top.alpha,
        "k_percent": top.k_percent,
        "positions": top.positions,
        "rank_by": top.rank_by,
        "intervention": top.intervention,
    }
    selection = asked.model_copy(update={"chosen": chosen, "validation": rows})
    return Strength(
        top.alpha, top.k_percent, top.positions, top.rank_by, s.method, top.intervention, selection
    )
