"""Stage 3: selection and the steering plan — which heads get α·c·δ added to their output."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from gcm_edit.errors import GcmEditError
from gcm_edit.model.heads import HeadGeometry, intervene

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
    """What happens to each steered head, at every position.

    Additive: head `heads[i]` gets `alpha · scales[i] · vectors[i]` added (baked into b_O).
    Head scaling: head `scaled_heads[i]`'s output is multiplied by `head_scales[i]`
    (baked into W_O's columns). Scaling applies first: z ← s ⊙ z + a.
    """

    geometry: HeadGeometry
    heads: list[tuple[int, int]]
    vectors: torch.Tensor  # [n, head_dim]
    alpha: float
    scales: list[float]
    scaled_heads: list[tuple[int, int]] = field(default_factory=list)
    head_scales: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        """Fail closed: a plan with NaN or inf anywhere would bake a broken model."""
        numbers = [self.alpha, *self.scales, *self.head_scales]
        finite = all(map(math.isfinite, numbers)) and torch.isfinite(self.vectors).all()
        if not (finite and torch.isfinite(self.add_tensor()).all()):
            raise GcmEditError(
                "steering plan holds NaN or inf (α, scales, steering vectors or α·c·δ): the "
                "model's activations or the options overflowed; nothing is baked from it"
            )

    @classmethod
    def from_scores(
        cls,
        scores: torch.Tensor,
        deltas: torch.Tensor,
        k_percent: float,
        alpha: float,
        intervention: str = "additive",
    ) -> SteeringPlan:
        """Top-k% heads get α·δ added ("additive") or their output multiplied by α ("scale").

        `deltas` is δ for every head, [layers, heads, head_dim]: it also gives the geometry.
        """
        geometry = HeadGeometry(*deltas.shape)
        heads = select_heads(scores, k_percent)
        if intervention == "scale":
            empty = torch.zeros(0, geometry.head_dim)
            return cls(geometry, [], empty, alpha, [], heads, [alpha] * len(heads))
        vectors = torch.stack([deltas[layer, head] for layer, head in heads])
        return cls(geometry, heads, vectors, alpha, [1.0] * len(heads))

    @classmethod
    def compose(cls, plans: list[SteeringPlan]) -> SteeringPlan:
        """One plan doing all of them: additions sum, head scales multiply (z ← Πs ⊙ z + Σa).

        Each plan's α is folded into its heads' scales, so the composite has α = 1.
        """
        geometry = plans[0].geometry
        if any(p.geometry != geometry for p in plans):
            raise ValueError("plans for different models cannot be composed")
        return cls(
            geometry,
            [h for p in plans for h in p.heads],
            torch.cat([p.vectors.float() for p in plans]),
            1.0,
            [p.alpha * c for p in plans for c in p.scales],
            [h for p in plans for h in p.scaled_heads],
            [v for p in plans for v in p.head_scales],
        )

    @property
    def steered_heads(self) -> list[tuple[int, int]]:
        """Distinct heads the plan touches, additive or scaled."""
        return sorted(set(self.heads) | set(self.scaled_heads))

    def add_tensor(self) -> torch.Tensor:
        """What to add to o_proj's input in each layer: [layers, heads*head_dim]."""
        g = self.geometry
        add = torch.zeros(g.n_layers, g.n_heads * g.head_dim, dtype=torch.float32)
        for (layer, head), vector, scale in zip(self.heads, self.vectors, self.scales, strict=True):
            add[layer, g.head_slice(head)] += self.alpha * scale * vector.float()
        return add

    def scale_tensor(self) -> torch.Tensor | None:
        """Per-layer multiplier of o_proj's input, or None when no head is scaled."""
        if not self.scaled_heads:
            return None
        g = self.geometry
        scale = torch.ones(g.n_layers, g.n_heads * g.head_dim, dtype=torch.float32)
        for (layer, head), value in zip(self.scaled_heads, self.head_scales, strict=True):
            scale[layer, g.head_slice(head)] *= value
        return scale

    def apply(self, model, device=None):
        """Context manager: the hooked steered model (the reference every export must equal)."""
        device = device or next(model.parameters()).device
        scale = self.scale_tensor()
        return intervene(
            model,
            add=self.add_tensor().to(device) if self.heads else None,
            scale=None if scale is None else scale.to(device),
        )

    def fingerprint(self) -> str:
        """Identifies the intervention itself (cache key for steered answers)."""
        scale = self.scale_tensor()
        digest = hashlib.sha256(self.add_tensor().numpy().tobytes())
        if scale is not None:
            digest.update(scale.numpy().tobytes())
        return digest.hexdigest()[:16]

    def pushes(self, head_norm: torch.Tensor) -> list[float]:
        """How hard each additive head is pushed: ‖α·c·δ‖ over the head's typical output
        norm E‖z‖ ([L, H], steering/vectors.py). Near 1 the steering is the size of what the
        head writes anyway; many times that, the model is overridden rather than steered."""
        return [
            abs(self.alpha * scale) * float(vector.norm()) / max(float(head_norm[head]), 1e-12)
            for head, vector, scale in zip(self.heads, self.vectors, self.scales, strict=True)
        ]

    def describe(self, head_norm: torch.Tensor | None = None) -> list[dict]:
        """One row per steered head (additive, then scaled), for the manifest and model card;
        with `head_norm`, additive rows also give their push (see `pushes`)."""
        rows = [
            {"layer": layer, "head": head, "scale": scale, "delta_norm": float(vector.norm())}
            for (layer, head), vector, scale in zip(
                self.heads, self.vectors, self.scales, strict=True
            )
        ]
        if head_norm is not None:
            for row, push in zip(rows, self.pushes(head_norm), strict=True):
                row["push"] = push
        rows += [
            {"layer": layer, "head": head, "head_scale": value}
            for (layer, head), value in zip(self.scaled_heads, self.head_scales, strict=True)
        ]
        return rows

    def save(self, folder: Path) -> None:
        """δ vectors as safetensors plus a JSON header, so the hooked model can be rebuilt."""
        save_file({"vectors": self.vectors.contiguous().float()}, str(folder / PLAN_TENSORS))
        meta = {
            "geometry": vars(self.geometry),
            "heads": self.heads,
            "alpha": self.alpha,
            "scales": self.scales,
            "scaled_heads": self.scaled_heads,
            "head_scales": self.head_scales,
        }
        (folder / "gcm_edit_plan.json").write_text(json.dumps(meta, indent=2) + "\n")

    @classmethod
    def load(cls, folder: Path) -> SteeringPlan:
        meta = json.loads((folder / "gcm_edit_plan.json").read_text())
        vectors = load_file(str(folder / PLAN_TENSORS))["vectors"]
        return cls(
            HeadGeometry(**meta["geometry"]),
            [tuple(h) for h in meta["heads"]],
            vectors,
            meta["alpha"],
            meta["scales"],
            [tuple(h) for h in meta["scaled_heads"]],
            meta["head_scales"],
        )
