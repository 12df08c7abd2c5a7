"""`--edit caa`: the baseline most users reach for first, one residual-stream mean-difference
vector at one layer (CAA; steering/residual.py), baked into that layer's output projection.

GCM's head ranking is not used: the layer (of `--caa-layers`) and the coefficient (of
`--alphas`) are chosen on the validation split like every other candidate plan, within
`--kl-budget` when one is given. Held-out, the card compares it with the mean-difference
head plan the other options describe, so a user sees what selecting heads buys over it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, ClassVar, Literal

from pydantic import Field

from gcm_edit.checkpoint.sections import EditReport
from gcm_edit.commands.edits.base import EditConfig, FittedEdit, flag
from gcm_edit.console import console
from gcm_edit.errors import GcmEditError

if TYPE_CHECKING:
    from gcm_edit.commands.export_settings import ExportSettings
    from gcm_edit.commands.steering_run import SteeringRun
    from gcm_edit.commands.strength import Strength
    from gcm_edit.evaluation.plan_results import PlanResult
    from gcm_edit.steering.plan import SteeringPlan

DEPTHS = (0.25, 0.5, 0.75)  # default layers: early, middle and late, as fractions of depth
RIVAL = "mean-diff"


class CaaReport(EditReport):
    kind: Literal["caa"] = "caa"
    layer: int
    coefficient: float
    n_layer_heads: int
    title: ClassVar[str] = "The residual-stream vector (CAA) vs GCM's mean-difference heads"
    learned: ClassVar[str] = "CAA"

    def card_section(self) -> str:
        layers = ", ".join(str(layer) for layer in self.objective["layers"])
        alphas = ", ".join(f"{a:g}" for a in self.objective["alphas"])
        budget = self.objective["kl_budget"]
        within = "" if budget is None else f" within KL {budget:g} per neutral token"
        return f"""## Residual-stream edit (CAA)

One vector v, the mean over training pairs of layer {self.layer}'s output (response positions,
with the directive minus without), times c = {self.coefficient:g}, is written into the
output-projection bias of all {self.n_layer_heads} heads of layer {self.layer} (Panickssery et
al. 2023, as steering-vectors and repeng compute it; the layer's MLP sees it too). The layer
and c were chosen on the validation split{within}, among layers {layers} × c ∈ {{{alphas}}}.
Held-out, against GCM's mean-difference plan (the heads and α the other options give):

{self.table().markdown()}

"""


class CaaConfig(EditConfig):
    """One residual-stream mean-difference vector at the best layer (CAA), as a baseline."""

    kind: Literal["caa"] = "caa"
    budget_is_target: ClassVar[bool] = True  # --kl-budget bounds its own candidates
    reads_alphas: ClassVar[bool] = True  # its coefficients are the α grid
    layers: list[Annotated[int, Field(ge=0)]] = Field(
        [],
        description="Layers CAA may write at (none given: at 25%, 50% and 75% of the depth).",
        json_schema_extra=flag("caa-layers"),
    )

    def written_as(self, start: str) -> str:
        return "residual"

    def check(self, run: SteeringRun) -> None:
        g = run.geometry
        wrong = [layer for layer in self.layers if layer >= g.n_layers]
        if wrong:
            raise GcmEditError(
                f"--caa-layers: the model has layers 0-{g.n_layers - 1}, not {wrong[0]}"
            )
        if g.n_heads * g.head_dim < run.config.hidden_size:
            raise GcmEditError(
                f"--edit caa: {run.config.model_type}'s output projection is narrower than the "
                "residual stream (heads·head_dim < hidden_size), so no bias there can carry a "
                "residual vector; use another --edit"
            )

    def candidate_layers(self, n_layers: int) -> list[int]:
        if not self.layers:
            return sorted({int(depth * n_layers) for depth in DEPTHS})
        return list(dict.fromkeys(self.layers))

    def fit(self, run: SteeringRun, strength: Strength, settings: ExportSettings) -> FittedEdit:
        """The best (layer, c) on validation; the mean-difference head plan is the rival."""
        from gcm_edit.evaluation.plan_results import best
        from gcm_edit.steering.residual import residual_vectors

        layers = self.candidate_layers(run.geometry.n_layers)
        with run.stage("residual vectors"):
            vectors = residual_vectors(
                run.model, run.pairs.pairs, run.tokenizer.pad_token_id, settings.batch_size
            )
        rows, plans = candidates(run, vectors, layers, settings)
        if not rows:
            raise GcmEditError(
                f"no CAA candidate is within --kl-budget {settings.kl_budget:g}: raise the "
                "budget or add smaller --alphas"
            )
        chosen = best(rows)
        plan = plans[rows.index(chosen)]
        layer = plan.heads[0][0]
        console.print(f"CAA: layer {layer}, c = {chosen.alpha:g} chosen on validation")
        objective = dict(layers=layers, alphas=list(settings.alphas), kl_budget=settings.kl_budget)

        def report(comparison) -> CaaReport:
            return CaaReport(
                objective=objective,
                chosen_step=0,
                history=[],
                validation=rows,
                comparison=comparison,
                layer=layer,
                coefficient=chosen.alpha,
                n_layer_heads=run.geometry.n_heads,
                intro=(
                    f"one residual-stream steering vector (CAA) times c = {chosen.alpha:g}, "
                    f"written into the output-projection bias of layer {layer}'s "
                    f"{run.geometry.n_heads} heads; layer and c were chosen on the validation "
                    "split, and GCM's head scores (scores.csv) played no part"
                ),
            )

        steering = dict(positions="response", rank_by="validation", k_percent=chosen.k_percent)
        steering["alpha"] = chosen.alpha
        return FittedEdit(plan, strength.plan(run), RIVAL, report, steering)


def candidates(
    run: SteeringRun, vectors, layers: list[int], settings: ExportSettings
) -> tuple[list[PlanResult], list[SteeringPlan]]:
    """Every (layer, c) within the KL budget, measured on validation (KL first: it is cheap)."""
    from gcm_edit.commands.candidates import measure
    from gcm_edit.steering.residual import residual_plan

    questions = run.recipe.validation[: settings.n_validation]
    share = round(100 * run.geometry.n_heads / run.geometry.n_total, 2)
    rows, plans = [], []
    for layer in layers:
        for c in settings.alphas:
            plan = residual_plan(run.model, layer, vectors[layer], c)
            if settings.kl_budget is not None and run.retention(plan).kl > settings.kl_budget:
                continue
            keys = dict(positions="response", intervention="residual", k_percent=share, alpha=c)
            rows.append(measure(run, questions, plan, f"caa L{layer}", **keys))
            plans.append(plan)
    return rows, plans
