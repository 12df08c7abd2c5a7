"""Stage 2b machinery: every head-scoring method is a LightningModule run by `Trainer.predict`.

A method adds one tensor per step into `total` (so no graph is kept across steps);
`total` is summed across ranks at the end of the epoch and turned into scores [L, H].
Predict loops shard work items without repeating any (unlike test loops under DDP), so
the sum over ranks counts every pair exactly once.

`--strategy fsdp` shards the model itself over the processes with FSDP2 (`fully_shard`, each
decoder layer and then the rest) through Lightning's ModelParallelStrategy, which runs on CPUs
over gloo (Lightning's FSDPStrategy refuses any accelerator but CUDA). Every rank then gathers
each layer's weights together, so every rank must run as many steps: the work items are padded
to a multiple of the processes with repeats that count zero.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial

import lightning as L
import torch
from torch.utils.checkpoint import checkpoint
from torch.utils.data import DataLoader

from gcm_edit.model.heads import HeadGeometry, decoder_layers
from gcm_edit.model.trainers import device_args, interrupts_raised, quiet_lightning
from gcm_edit.pairs.contrastive import Pair
from gcm_edit.scoring.runtime import ScoringRuntime


class Scorer(L.LightningModule):
    """Base class: a list of work items, one contribution per item, one reduction at the end."""

    def __init__(self, model: torch.nn.Module, pairs: list[Pair], pad_id: int, total_shape=None):
        """total_shape: what the contributions sum into; default one value per head."""
        super().__init__()
        self.model = model
        self.pairs = pairs
        self.pad_id = pad_id
        self.geometry = HeadGeometry.of(model.config)
        shape = total_shape or (self.geometry.n_layers, self.geometry.n_heads)
        self.register_buffer("total", torch.zeros(shape, dtype=torch.float64))
        self.scores: torch.Tensor | None = None

    def work_items(self, batch_size: int) -> list:
        """Default: chunks of pair indices."""
        indices = list(range(len(self.pairs)))
        return [indices[i : i + batch_size] for i in range(0, len(indices), batch_size)]

    def collate(self, item):
        raise NotImplementedError

    def contribution(self, batch) -> torch.Tensor:
        """What this item adds to `total`."""
        raise NotImplementedError

    def finish(self, total: torch.Tensor) -> torch.Tensor:
        """Scores [layers, heads] from the all-reduced total; default: mean over pairs."""
        return total / len(self.pairs)

    def configure_model(self) -> None:
        """Under --strategy fsdp (a device mesh is set): shard the model; else leave it whole."""
        if self.device_mesh is None:
            return
        from torch.distributed.fsdp import fully_shard

        mesh = self.device_mesh["data_parallel"]
        for layer in decoder_layers(self.model):
            fully_shard(layer, mesh=mesh)
        fully_shard(self.model, mesh=mesh)

    def predict_step(self, batch, batch_idx: int) -> None:
        batch, weight = batch
        contribution = self.contribution(batch)  # run even when discarded: every rank gathers
        if weight:  # 0: a repeat that only keeps the sharded ranks in step
            self.total += contribution.double()

    def on_predict_epoch_end(self) -> None:
        total = self.trainer.strategy.reduce(self.total.clone(), reduce_op="sum")
        self.scores = self.finish(total).float().cpu()

    def transfer_batch_to_device(self, batch, device, dataloader_idx: int):
        batch, weight = batch
        return batch.to(device), weight


@contextmanager
def checkpointed_layers(model: torch.nn.Module, enabled: bool) -> Iterator[None]:
    """Recompute each decoder layer in the backward pass instead of storing its activations.

    Works in eval mode (HF's own gradient checkpointing is only active in training mode);
    head hooks inside a layer run again during recomputation, which is what we want.
    """
    layers = decoder_layers(model) if enabled else []
    saved = [layer.__dict__.get("forward") for layer in layers]
    for layer in layers:
        layer.forward = partial(checkpoint, layer.forward, use_reentrant=False)
    try:
        yield
    finally:
        for layer, forward in zip(layers, saved, strict=True):
            if forward is None:
                del layer.forward
            else:
                layer.forward = forward


def resolve_precision(precision: str, device: torch.device) -> str:
    if precision != "auto":
        return precision
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return "bf16-mixed"
    return "32-true"


def make_trainer(model: torch.nn.Module, runtime: ScoringRuntime) -> L.Trainer:
    """A predict-only Trainer on the model's own device type."""
    device = next(model.parameters()).device
    strategy = runtime.strategy
    if strategy == "auto" and runtime.devices > 1:
        strategy = "ddp"
    elif strategy == "fsdp":
        from lightning.pytorch.strategies import ModelParallelStrategy

        strategy = ModelParallelStrategy(data_parallel_size=runtime.devices, tensor_parallel_size=1)
    return L.Trainer(
        **device_args(device, runtime.devices),
        strategy=strategy,
        precision=resolve_precision(runtime.precision, device),
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        inference_mode=False,
    )


def run_scorer(scorer: Scorer, runtime: ScoringRuntime) -> torch.Tensor:
    """Run the scorer's predict loop; return scores [layers, heads] (on every rank). Under
    --strategy fsdp the model is left sharded: load it again to use it whole."""
    model = scorer.model
    device = next(model.parameters()).device
    work = scorer.work_items(runtime.batch_size)
    items = [(item, 1) for item in work]
    if runtime.strategy == "fsdp":  # repeats that count zero, up to a multiple of the ranks
        missing = -len(work) % runtime.devices
        items += [(work[i % len(work)], 0) for i in range(missing)]
    loader = DataLoader(
        items, batch_size=1, collate_fn=lambda chosen: (scorer.collate(chosen[0][0]), chosen[0][1])
    )
    with checkpointed_layers(model, runtime.activation_checkpointing), quiet_lightning():
        trainer = make_trainer(model, runtime)
        with interrupts_raised(trainer):
            trainer.predict(scorer, dataloaders=loader, return_predictions=False)
    model.to(device)  # Lightning's teardown moves the module (and our shared model) to CPU
    return scorer.scores
