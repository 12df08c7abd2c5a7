"""Gated neurons: a token-specific edit that a plain checkpoint still carries.

A head edit writes the same vector, or a linear map of the head's own output, at every
position; a prompt acts strongly on a few tokens and barely on others (PSR, arXiv 2605.03907).
m neurons appended to layer l's MLP write only where their gates open:

    mlp(x) ← mlp(x) + D (act(G x) ⊙ (U x))      x: the MLP's input, act: its own activation

They bake as m more rows of gate_proj and up_proj and m more columns of down_proj. A config has
one intermediate_size for all layers, so every other layer grows by as many zero neurons: with
U = 0 they add exactly 0, whatever act(0) is (checkpoint/bake.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

PARTS = ("gate", "up", "down")


@dataclass(frozen=True)
class GatedNeurons:
    """m neurons added to layer `layer`'s MLP: gate G and up U [m, hidden], down D [hidden, m]."""

    layer: int
    gate: torch.Tensor
    up: torch.Tensor
    down: torch.Tensor

    def __post_init__(self) -> None:
        m, hidden = self.gate.shape
        if self.up.shape != (m, hidden) or self.down.shape != (hidden, m):
            raise ValueError(
                f"gated neurons of mismatched shapes: gate {tuple(self.gate.shape)}, up "
                f"{tuple(self.up.shape)}, down {tuple(self.down.shape)}"
            )

    @property
    def count(self) -> int:
        return self.gate.shape[0]

    def hook(self, device) -> tuple[int, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(layer, G, U, D) on `device`, as model/mlp.py `add_neurons` takes them."""
        return (self.layer, *(getattr(self, part).float().to(device) for part in PARTS))

    def dosed(self, dose: float) -> GatedNeurons:
        """`dose` times the neurons' output (D scaled)."""
        return GatedNeurons(self.layer, self.gate, self.up, self.down * dose)

    def is_finite(self) -> bool:
        return all(torch.isfinite(getattr(self, part)).all() for part in PARTS)

    def tensors(self, prefix: str) -> dict[str, torch.Tensor]:
        """For a safetensors file: `{prefix}gate`, `{prefix}up`, `{prefix}down` (float32)."""
        return {prefix + part: getattr(self, part).contiguous().float() for part in PARTS}

    @classmethod
    def from_tensors(cls, layer: int, tensors: dict[str, torch.Tensor], prefix: str):
        return cls(layer, *(tensors[prefix + part] for part in PARTS))

    def digest(self) -> bytes:
        """Identifies the neurons (the plan's fingerprint)."""
        parts = [getattr(self, part).float().contiguous().numpy().tobytes() for part in PARTS]
        return str(self.layer).encode() + b"".join(parts)
