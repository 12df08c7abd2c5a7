"""Stage 2b: attribution-patching mediation scores for every head, run by a Lightning Trainer.

M(p_orig) = log π(r_contrast | p_orig) − log π(r_orig | p_orig), teacher-forced.
s[l,h] = (1/N) Σ_pairs Σ_t ∇_{z[l,h,t]} M · δ[l,h]

Σ_t ∇_z M is the gradient of M w.r.t. a zero vector added to z at every position, so one
forward of both responses plus one backward scores every head; because δ is shared by all
pairs, summing M over a batch before the backward gives the same sum of per-pair terms.
"""

from __future__ import annotations

import csv
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader

from gcm_edit.heads import HeadGeometry, add_to_heads
from gcm_edit.pairs import Pair
from gcm_edit.sequences import TokenBatch, response_logprob


def collate_pairs(pairs: list[Pair], pad_id: int) -> TokenBatch:
    """Rows [0, B): p_orig ⊕ r_contrast; rows [B, 2B): p_orig ⊕ r_orig."""
    prompts = [p.prompt_orig for p in pairs] * 2
    responses = [p.response_contrast for p in pairs] + [p.response_orig for p in pairs]
    return TokenBatch.build(prompts, responses, pad_id)


def mediation_metric(model, batch: TokenBatch) -> torch.Tensor:
    """M per pair for a batch built by `collate_pairs`: shape [B]."""
    logprob = response_logprob(model, batch)
    half = logprob.shape[0] // 2
    return logprob[:half] - logprob[half:]


class AttributionPatching(L.LightningModule):
    """Accumulates Σ_pairs ∇M·δ per head in its test loop; scores are all-reduced over ranks."""

    def __init__(self, model: torch.nn.Module, deltas: torch.Tensor):
        super().__init__()
        self.model = model
        self.geometry = HeadGeometry.of(model.config)
        self.register_buffer("deltas", deltas.float())
        self.register_buffer("score_sum", torch.zeros(deltas.shape[:2], dtype=torch.float64))
        self.register_buffer("pair_count", torch.zeros((), dtype=torch.float64))
        self.scores: torch.Tensor | None = None

    def test_step(self, batch: TokenBatch, batch_idx: int) -> None:
        g = self.geometry
        with torch.enable_grad():
            probe = torch.zeros(
                g.n_layers, g.n_heads * g.head_dim, device=self.device, requires_grad=True
            )
            with add_to_heads(self.model, probe):
                metric = mediation_metric(self.model, batch)
            (grad,) = torch.autograd.grad(metric.sum(), probe)
        per_head = (grad.view(g.n_layers, g.n_heads, g.head_dim) * self.deltas).sum(-1)
        self.score_sum += per_head.double()
        self.pair_count += metric.shape[0]

    def on_test_epoch_end(self) -> None:
        total = self.trainer.strategy.reduce(self.score_sum.clone(), reduce_op="sum")
        count = self.trainer.strategy.reduce(self.pair_count.clone(), reduce_op="sum")
        self.scores = (total / count).float().cpu()

    def transfer_batch_to_device(self, batch: TokenBatch, device, dataloader_idx: int):
        return batch.to(device)


def attribution_scores(
    model, pairs: list[Pair], deltas: torch.Tensor, pad_id: int, batch_size: int
) -> torch.Tensor:
    """Mediation score per head, shape [layers, heads]."""
    module = AttributionPatching(model, deltas)
    loader = DataLoader(pairs, batch_size=batch_size, collate_fn=lambda b: collate_pairs(b, pad_id))
    trainer = L.Trainer(
        accelerator="auto",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        inference_mode=False,
    )
    device = next(model.parameters()).device
    trainer.test(module, dataloaders=loader, verbose=False)
    model.to(device)  # Lightning's teardown moves the module (and our shared model) to CPU
    return module.scores


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
    scores: torch.Tensor, selected: list[tuple[int, int]], path: Path, title: str
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
    fig.colorbar(image, ax=ax, label="mediation score")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
