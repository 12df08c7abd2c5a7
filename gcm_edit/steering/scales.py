"""Learned per-head steering scales (activation scaling, Stoehr et al., arXiv 2410.04962).

The model is frozen. Each candidate head i gets a trainable c_i multiplying its α·δ_i and,
optionally, s_i scaling the head's own output: z ← s_i·z + α·c_i·δ_i. Each step minimises

    −M_steered / T  +  λ · KL(base ‖ steered)  +  λ_M · (‖c‖₁ + ‖s − 1‖₁)

(M per response token, averaged over the batch's pairs; KL per token on the shipped neutral
prompts). The L1 term is applied as a proximal soft-threshold after every optimiser step, so
heads that do not pay for their KL end at exactly c = 0 (s = 1) and leave the plan.

KL is a constraint, not a price: λ starts at λ_F and is a Lagrange multiplier holding KL to
its target (steering/constraint.py). Training starts from a uniform plan's own scales
(warm start: c = 1 on its heads, 0 on the other candidates) and snapshots c every few steps;
the caller keeps the snapshot that does best on validation (early stopping), step 0 included.
"""

from __future__ import annotations

from dataclasses import dataclass

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader

from gcm_edit.model.batches import TokenBatch
from gcm_edit.model.heads import HeadGeometry, intervene
from gcm_edit.model.trainers import fit_steps
from gcm_edit.pairs.contrastive import Pair
from gcm_edit.scoring.metric import collate_pairs, mediation_metric
from gcm_edit.steering.constraint import NeutralKL


@dataclass(frozen=True)
class ScaleObjective:
    alpha: float
    lambda_f: float  # starting weight of KL(base ‖ steered) on neutral prompts
    lambda_m: float  # weight of the L1 term (minimality)
    lr: float
    steps: int
    learn_head_scale: bool
    seed: int
    kl_target: float  # KL per neutral token the Lagrange multiplier holds the scales to
    init_c: tuple[float, ...]  # warm start, one per candidate
    snapshot_every: int  # steps between the snapshots early stopping chooses from


@dataclass
class LearnedScales:
    heads: list[tuple[int, int]]  # the candidates, in score order
    c: list[float]
    s: list[float] | None
    history: list[dict]  # one row per optimiser step
    snapshots: list[dict]  # {"step", "c", "s"}: step 0 (the warm start), then every few steps

    @property
    def surviving(self) -> list[int]:
        """Indices of candidates still steering: c ≠ 0 or s ≠ 1."""
        s = self.s or [1.0] * len(self.c)
        return [i for i, (c, si) in enumerate(zip(self.c, s, strict=True)) if c != 0 or si != 1]


def _soft_threshold(x: torch.Tensor, centre: float, t: float) -> torch.Tensor:
    d = x - centre
    return centre + torch.sign(d) * (d.abs() - t).clamp(min=0)


class ScaleLearner(L.LightningModule):
    def __init__(
        self,
        model,
        heads: list[tuple[int, int]],
        vectors: torch.Tensor,
        neutral: NeutralKL,
        objective: ScaleObjective,
    ):
        super().__init__()
        self.model = model
        self.geometry = HeadGeometry.of(model.config)
        self.objective = objective
        self.neutral = neutral
        self.register_buffer("vectors", vectors.float())
        self.register_buffer("layer_index", torch.tensor([h[0] for h in heads]))
        self.register_buffer("head_index", torch.tensor([h[1] for h in heads]))
        self.c = nn.Parameter(torch.tensor(objective.init_c, dtype=torch.float32))
        self.s = nn.Parameter(torch.ones(len(heads))) if objective.learn_head_scale else None
        self.history: list[dict] = []
        self.snapshots: list[dict] = []

    def snapshot(self, step: int) -> None:
        s = None if self.s is None else [float(v) for v in self.s.detach().cpu()]
        self.snapshots.append(
            {"step": step, "c": [float(v) for v in self.c.detach().cpu()], "s": s}
        )

    def steering(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Differentiable (add, scale) tensors [layers, heads*head_dim] for `intervene`."""
        g = self.geometry
        index = (self.layer_index, self.head_index)
        values = self.objective.alpha * self.c[:, None] * self.vectors
        add = torch.zeros(g.n_layers, g.n_heads, g.head_dim, device=self.device)
        add = add.index_put(index, values, accumulate=True).view(g.n_layers, -1)
        if self.s is None:
            return add, None
        scale = torch.ones(g.n_layers, g.n_heads, device=self.device).index_put(index, self.s)
        return add, scale[..., None].expand(-1, -1, g.head_dim).reshape(g.n_layers, -1)

    def on_fit_start(self) -> None:
        self.neutral.start(self.model, self.device)
        self.snapshot(0)

    def on_train_epoch_start(self) -> None:
        self.model.eval()  # fit() switches modules to train mode; the frozen model stays in eval

    def training_step(self, batch: TokenBatch, batch_idx: int) -> torch.Tensor:
        add, scale = self.steering()
        with intervene(self.model, add, scale):
            metric = mediation_metric(self.model, batch)[0]
            kl = self.neutral.kl(self.model, self.device)
        tokens = batch.response_mask.sum() / batch.response_mask.shape[0]  # per sequence
        effect = -metric.mean() / tokens
        loss = effect + self.neutral.multiplier * kl
        l1 = self.c.abs().sum()
        if self.s is not None:
            l1 = l1 + (self.s - 1).abs().sum()
        row = {
            "loss": float(loss.detach() + self.objective.lambda_m * l1.detach()),
            "effectiveness": float(effect.detach()),
            "kl": float(kl.detach()),
            "lambda": self.neutral.multiplier,
            "l1": float(l1.detach()),
            "nonzero": int((self.c != 0).sum()),
        }
        self.history.append(row)
        self.log_dict({k: float(v) for k, v in row.items()}, prog_bar=True, on_step=True)
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        goal = self.objective
        threshold = goal.lr * goal.lambda_m
        with torch.no_grad():
            self.c.copy_(_soft_threshold(self.c, 0.0, threshold))
            if self.s is not None:
                self.s.copy_(_soft_threshold(self.s, 1.0, threshold))
        self.neutral.update(self.history[-1]["kl"])
        step = len(self.history)
        if step % goal.snapshot_every == 0 or step == goal.steps:
            self.snapshot(step)

    def configure_optimizers(self):
        params = [self.c] + ([self.s] if self.s is not None else [])
        return torch.optim.Adam(params, lr=self.objective.lr)

    def transfer_batch_to_device(self, batch, device, dataloader_idx: int):
        return batch.to(device)


def learn_scales(
    model,
    tokenizer,
    pairs: list[Pair],
    heads: list[tuple[int, int]],
    vectors: torch.Tensor,
    objective: ScaleObjective,
    batch_size: int,
) -> LearnedScales:
    """Fit c (and s) for the candidate heads with a Lightning Trainer; the model is unchanged."""
    neutral = NeutralKL(tokenizer, objective.kl_target, objective.lambda_f)
    learner = ScaleLearner(model, heads, vectors, neutral, objective)
    pad = tokenizer.pad_token_id
    loader = DataLoader(
        pairs,
        batch_size=batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(objective.seed),
        collate_fn=lambda b: collate_pairs(b, pad),
    )
    device = next(model.parameters()).device
    state = (model.training, [p.requires_grad for p in model.parameters()])
    model.requires_grad_(False)
    try:
        fit_steps(learner, loader, objective.steps, device)
    finally:
        model.to(device).train(state[0])
        for param, flag in zip(model.parameters(), state[1], strict=True):
            param.requires_grad_(flag)
    return LearnedScales(
        heads,
        [float(v) for v in learner.c.detach().cpu()],
        None if learner.s is None else [float(v) for v in learner.s.detach().cpu()],
        learner.history,
        learner.snapshots,
    )
