"""How Lightning runs a scorer. Kept free of heavy imports: the CLI reads its defaults."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ScoringRuntime:
    """The defaults here are the command line's defaults too."""

    batch_size: int = 8  # pairs per step: what the backward pass keeps grows with it
    head_batch: int = 4  # heads patched per forward (activation, knockout)
    seed: int = 0  # random ranking; probe cross-validation folds
    devices: int = 1
    strategy: str = "auto"  # auto | ddp | fsdp
    precision: str = "auto"  # auto: bf16-mixed on a CUDA device with bf16, else 32-true
    activation_checkpointing: bool = True  # memory vs time: docs/results.md#memory-per-stage
