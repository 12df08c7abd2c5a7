"""The export's manifest, built once from what the run chose, measured and wrote: the card,
the console tables and gcm_edit.json all render from it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

from gcm_edit.checkpoint.bake import export_class
from gcm_edit.checkpoint.manifest import (
    BaseModelInfo,
    DecodingInfo,
    ExportInfo,
    HeadRow,
    Manifest,
    NeuronRow,
    PairsInfo,
    RecipeInfo,
    Sample,
    SteeringInfo,
)
from gcm_edit.commands.edits import FittedEdit
from gcm_edit.commands.export_results import ExportResults
from gcm_edit.commands.export_write import Written
from gcm_edit.commands.steering_run import SteeringRun
from gcm_edit.commands.strength import Strength
from gcm_edit.evaluation.spread import measured_spread, spread_key
from gcm_edit.judges.learned import LearnedJudge
from gcm_edit.model.generation import engine
from gcm_edit.output import invocation, weights_bytes
from gcm_edit.steering.vectors import HEAD_NORM
from gcm_edit.version import __version__

if TYPE_CHECKING:
    from gcm_edit.commands.export_settings import ExportSettings


def recipe_info(run: SteeringRun, heldout_size: int) -> RecipeInfo:
    recipe = run.recipe
    return RecipeInfo(
        name=recipe.name,
        description=recipe.description,
        sha256=recipe.sha256(),
        directive=recipe.directive.model_dump() if recipe.directive else None,
        prompt_format=run.prompt_format,
        explicit_pairs=recipe.pairs is not None,
        judge=run.judge_name,
        judge_trust=run.judge.fit.trust if isinstance(run.judge, LearnedJudge) else None,
        fluency=recipe.fluency.model_dump(),
        require_relevance=recipe.require_relevance,
        heldout_size=heldout_size,
    )


def steering_info(
    run: SteeringRun, s: ExportSettings, strength: Strength, fitted, plan, scores, collateral
) -> SteeringInfo:
    """The plan's heads and how they were chosen (the edit kind's word where it chose them)."""
    rows = [
        HeadRow(
            **row,
            score=float(scores[row["layer"], row["head"]]),
            collateral=None if collateral is None else float(collateral[row["layer"], row["head"]]),
        )
        for row in plan.describe(run.deltas[HEAD_NORM])
    ]
    chosen = dict(k_percent=strength.k_percent, positions=strength.positions)
    chosen |= dict(rank_by=strength.rank_by, alpha=plan.alpha)
    return SteeringInfo(
        intervention=s.edit.written_as(strength.intervention),
        n_heads_total=run.geometry.n_total,
        heads=rows,
        neurons=[
            NeuronRow(layer=n.layer, count=n.count, down_norm=float(n.down.norm()))
            for n in plan.neurons
        ],
        **(chosen | fitted.steering),
    )


def export_spread_key(run: SteeringRun, s: ExportSettings) -> str:
    """The key of this export's recorded seed spread (evaluation/spread.py): the options that
    can move its figures, the model and the recipe by content."""
    settings = s.model_dump(mode="json", include=s.measured_options())
    return spread_key(run.model_ref.fingerprint(), run.recipe.sha256(), settings)


def build_manifest(
    run: SteeringRun,
    s: ExportSettings,
    strength: Strength,
    fitted: FittedEdit,
    results: ExportResults,
    written: Written,
    staging: Path,
    scores,
    collateral,
    window: int | None,
) -> Manifest:
    source = Path(run.model_ref.source)
    m = results.metrics
    return Manifest(
        gcm_edit_version=__version__,
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        command=invocation(),
        base_model=BaseModelInfo(
            name=run.model_ref.name,
            source=run.model_ref.source,
            fingerprint=run.model_ref.fingerprint(),
            architecture=run.config.model_type,
            hub_id=run.model_ref.hub_id,
        ),
        recipe=recipe_info(run, m["base"].n),
        method=s.method,
        export=ExportInfo(
            format=s.format,
            export_class="PeftModel (LoRA on o_proj)"
            if s.format == "adapter"
            else export_class(run.model, results.plan),
            base_weights_bytes=weights_bytes(source) if source.is_dir() else None,
            exact_up_to_tokens=window,
            weights_bytes=weights_bytes(staging),
        ),
        steering=steering_info(run, s, strength, fitted, results.plan, scores, collateral),
        decoding=DecodingInfo(
            **run.decoding.generate_kwargs(), stop=list(run.decoding.stop), engine=engine()
        ),
        pairs=PairsInfo(
            n_questions=run.pairs.n_questions,
            kept=len(run.pairs.pairs),
            contrast_adherence=run.pairs.contrast_adherence,
            original_clean=run.pairs.original_clean,
        ),
        selection=strength.selection,
        metrics=m,
        spread=measured_spread(export_spread_key(run, s)),
        retention=results.retention,
        capability=results.capability,
        samples=[
            Sample(question=b["question"], base=b["answer"], steered=st["answer"])
            for b, st in zip(m["base"].answers, m["steered"].answers, strict=True)
        ],
        edit=None if fitted.report is None else fitted.report(results.comparison),
        composition=results.composition,
        verification=written.verification,
        gguf=written.gguf,
        dose_curve=results.doses,
        timings_s={k: round(v, 2) for k, v in run.timings.items()},
        peak_rss_gb=run.peaks.peaks_gb,
        peak_rss_method=run.peaks.method,
        files={
            name: digest
            for name, digest in sorted(written.hashes.items())
            if name.endswith((".safetensors", ".gguf"))
        },
    )
