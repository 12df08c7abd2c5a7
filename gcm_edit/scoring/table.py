"""Score tables on disk: `scores.csv` (layer, head, score) and the layer × head heatmap."""

from __future__ import annotations

import csv
from pathlib import Path

import torch


def write_scores_csv(scores: torch.Tensor, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["layer", "head", "score"])
        for layer, row in enumerate(scores.tolist()):
            for head, value in enumerate(row):
                writer.writerow([layer, head, f"{value:.8g}"])


def read_scores_csv(path: Path) -> torch.Tensor:
    with open(path) as f:
        rows = [(int(r["layer"]), int(r["head"]), float(r["score"])) for r in csv.DictReader(f)]
    scores = torch.zeros(max(r[0] for r in rows) + 1, max(r[1] for r in rows) + 1)
    for layer, head, value in rows:
        scores[layer, head] = value
    return scores


def plot_heatmap(
    scores: torch.Tensor,
    selected: list[tuple[int, int]],
    path: Path,
    title: str,
    label: str = "mediation score",
) -> None:
    """Layer × head heatmap (diverging, centred on 0) with the selected heads boxed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    limit = float(scores.abs().max()) or 1.0
    fig, ax = plt.subplots(
        figsize=(max(6.5, scores.shape[1] * 0.5), max(4, scores.shape[0] * 0.25))
    )
    image = ax.imshow(scores.numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    for layer, head in selected:
        ax.add_patch(Rectangle((head - 0.5, layer - 0.5), 1, 1, fill=False, lw=1.5, ec="black"))
    ax.set_xlabel("head")
    ax.set_ylabel("layer")
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, label=label)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
