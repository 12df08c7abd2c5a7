"""Stage 3: selection and the steering plan — which heads get α·c·δ added to their output."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from gcm_edit.heads import HeadGeometry

PLAN_TENSORS = "gcm_edit_plan.safetensors"


def n_selected(n_total: int, k_percent: float) -> int:
    return max(1, math.ceil(n_total * k_percent / 100 - 1e-9))


def select_heads(scores: torch.Tensor, k_percent: float) -> list[tuple[int, int]]:
    """Top k% of all heads by signed score (positive = pushes toward the contrast answer)."""
    n_heads = scores.shape[1]
    order = torch.argsort(scores.flatten(), descending=True, stable=True)
    top = order[: n_selected(scores.numel(), k_percent)].tolist()
    return [(i // n_heads, i % n_heads) for i in top]


@dataclass
class SteeringPlan:
    """Additive steering: head (l, h) gets alpha · scales[i] · vectors[i] at every position."""

    geometry: HeadGeometry
    heads: list[tuple[int, int]]
    vectors: torch.Tensor  # [n, head_dim]
    alpha: float
    scales: list[float]

    @classmethod
    def from_scores(
        cls,
        scores: torch.Tensor,
        deltas: torch.Tensor,
        geometry: HeadGeometry,
        k_percent: float,
        alpha: float,
    ) -> SteeringPlan:
        heads = select_heads(scores, k_percent)
        vectors = torch.stack([deltas[layer, head] for layer, head in heads])
        return cls(geometry, heads, vectors, alpha, [1.0] * len(heads))

    def add_tensor(self) -> torch.Tensor:
        """What to add to o_proj's input in each layer: [layers, heads*head_dim]."""
        g = self.geometry
        add = torch.zeros(g.n_layers, g.n_heads * g.head_dim, dtype=torch.float32)
        for (layer, head), vector, scale in zip(self.heads, self.vectors, self.scales, strict=True):
            add[layer, g.head_slice(head)] += self.alpha * scale * vector.float()
        return add

    def fingerprint(self) -> str:
        """Identifies the intervention itself (cache key for steered answers)."""
        return hashlib.sha256(self.add_tensor().numpy().tobytes()).hexdigest()[:16]

    def describe(self) -> list[dict]:
        return [
            {"layer": layer, "head": head, "scale": scale, "delta_norm": float(vector.norm())}
            for (layer, head), vector, scale in zip(
                self.heads, self.vectors, self.scales, strict=True
            )
        ]

    def save(self, folder: Path) -> None:
        """δ vectors as safetensors plus a JSON header, so the hooked model can be rebuilt."""
        save_file({"vectors": self.vectors.contiguous().float()}, str(folder / PLAN_TENSORS))
        meta = {
            "geometry": vars(self.geometry),
            "heads": self.heads,
            "alpha": self.alpha,
            "scales": self.scales,
        }
        (folder / "gcm_edit_plan.json").write_text(json.dumps(meta, indent=2) + "\n")

    @classmethod
    def load(cls, folder: Path) -> SteeringPlan:
        meta = json.loads((folder / "gcm_edit_plan.json").read_text())
        vectors = load_file(str(folder / PLAN_TENSORS))["vectors"]
        heads = [tuple(h) for h in meta["heads"]]
        return cls(HeadGeometry(**meta["geometry"]), heads, vectors, meta["alpha"], meta["scales"])
