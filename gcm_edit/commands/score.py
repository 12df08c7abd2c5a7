"""`gcm-edit score`: score every head by one method and write scores.csv, a heatmap and metadata.

Scores land in the run cache too, so a later `gcm-edit export --method M` with the same
settings reuses them (score big models once, with several devices, then export).
"""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from gcm_edit.version import __version__
from gcm_edit.cache import write_json
from gcm_edit.checkpoint.card import invocation
from gcm_edit.scoring.methods import METHODS
from gcm_edit.output import check_output, staged_folder
from gcm_edit.commands.run import Run, console
from gcm_edit.steering.plan import select_heads
from gcm_edit.commands.report import print_tables
from gcm_edit.scoring.table import plot_heatmap, write_scores_csv
from gcm_edit.commands.settings import ScoreSettings


def score(settings: ScoreSettings) -> Path:
    run = Run(settings)
    method = METHODS[settings.method]
    default_out = (
        Path("checkpoints") / f"{run.model_ref.slug}-{run.recipe.name}-{settings.method}-scores"
    )
    out = check_output(settings.out or default_out, settings.force)
    scores = run.scores(settings.positions)
    selected = select_heads(scores, settings.k_percent)
    top = [{"layer": la, "head": h, "score": float(scores[la, h])} for la, h in selected]
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
        write_json(
            staging / "scores.json",
            {
                "gcm_edit_version": __version__,
                "command": invocation(),
                "method": settings.method,
                "summary": method.summary,
                "score": method.label,
                "base_model": {"name": run.model_ref.name, "source": run.model_ref.source},
                "recipe": {"name": run.recipe.name, "sha256": run.recipe.sha256()},
                "n_pairs": len(run.pairs.pairs),
                "positions": settings.positions if method.uses_deltas else None,
                "seed": settings.seed,
                "k_percent": settings.k_percent,
                "top_heads": top,
                "timings_s": {k: round(v, 2) for k, v in run.timings.items()},
            },
        )
    table = Table(
        title=f"top {settings.k_percent:g}% of {scores.numel()} heads by {settings.method}"
    )
    for header in ("rank", "layer", "head", method.label):
        table.add_column(header, justify="right")
    for rank, row in enumerate(top, 1):
        table.add_row(str(rank), str(row["layer"]), str(row["head"]), f"{row['score']:.4g}")
    print_tables(table)
    console.print(f"[bold]wrote[/] {out}/scores.csv, scores.png, scores.json")
    return out
