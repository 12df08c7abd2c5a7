"""`gcm-edit score`: score every head by one method and write scores.csv, a heatmap and metadata.

Scores land in the run cache too, so a later `gcm-edit export --method M` with the same
settings reuses them (score big models once, with several devices, then export).
"""

from __future__ import annotations

from pathlib import Path

from gcm_edit.checkpoint.reports import ModelInfo, RecipeRef, ScoresReport, TopHead
from gcm_edit.commands.settings import ScoreSettings
from gcm_edit.commands.steering_run import SteeringRun
from gcm_edit.console import console
from gcm_edit.output import check_output, invocation, staged_folder
from gcm_edit.scoring.methods import METHODS
from gcm_edit.scoring.table import plot_heatmap, write_scores_csv
from gcm_edit.steering.plan import select_heads
from gcm_edit.tables import Column, ResultTable, print_tables
from gcm_edit.version import __version__


def score(settings: ScoreSettings) -> Path | None:
    """The output folder; None in the extra processes of a multi-device scoring run."""
    run = SteeringRun(settings)
    method = METHODS[settings.method]
    out = check_output(
        settings.out or run.default_out(f"-{settings.method}-scores"),
        settings.force,
        run.inputs(),
        writer=run.is_rank_zero,
    )
    scores = run.scores(settings.positions, settings.method)
    if not run.is_rank_zero:
        return None
    selected = select_heads(scores, settings.k_percent)
    top = [TopHead(layer=la, head=h, score=float(scores[la, h])) for la, h in selected]
    with staged_folder(out) as staging:
        write_scores_csv(scores, staging / "scores.csv")
        plot_heatmap(
            scores,
            selected,
            staging / "scores.png",
            f"{run.model_ref.slug}: '{run.recipe.name}', {settings.method}\n"
            f"(top {settings.k_percent:g}% boxed)",
            method.label,
        )
        ScoresReport(
            gcm_edit_version=__version__,
            command=invocation(),
            method=settings.method,
            summary=method.summary,
            score=method.label,
            base_model=ModelInfo(name=run.model_ref.name, source=run.model_ref.source),
            recipe=RecipeRef(name=run.recipe.name, sha256=run.recipe.sha256()),
            n_pairs=len(run.pairs.pairs),
            positions=settings.positions if method.uses_deltas else None,
            seed=settings.seed,
            k_percent=settings.k_percent,
            top_heads=top,
            timings_s={k: round(v, 2) for k, v in run.timings.items()},
            peak_rss_gb=run.peaks.peaks_gb,
            peak_rss_method=run.peaks.method,
        ).write(staging / "scores.json")
    columns = [
        Column("rank", lambda row: row[0]),
        Column("layer", lambda row: row[1].layer),
        Column("head", lambda row: row[1].head),
        Column(method.label, lambda row: row[1].score, ".4g"),
    ]
    title = f"top {settings.k_percent:g}% of {scores.numel()} heads by {settings.method}"
    print_tables(ResultTable(title, columns, list(enumerate(top, 1))))
    console.print(f"[bold]wrote[/] {out}/scores.csv, scores.png, scores.json")
    return out
