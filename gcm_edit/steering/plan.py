"""Stage 3: selection and the steering plan — which heads get α·c·δ added to their output."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from gcm_edit.errors import GcmEditError
from gcm_edit.model.heads import HeadGeometry, Rank1, intervene
from gcm_edit.model.mlp import add_neurons
from gcm_edit.steering.neurons import GatedNeurons

PLAN_TENSORS = "gcm_edit_plan.safetensors"
MIN_READ_NORM = 1e-6  # ‖z̄‖ below this: the head is silent, rank-1 steering has nothing to read


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
    (baked into W_O's columns).
    Rank-1: head `rank1_heads[i]` gets `alpha · rank1_scales[i] · rank1_vectors[i]` times its
    own activity `rank1_reads[i]ᵀ z` added (a rank-1 update of its W_O columns): u = z̄/‖z̄‖²
    reads ≈ 1 on the original runs' mean output z̄, 0 where the head is silent.
    All at once, each reading the unedited z: z ← s ⊙ z + a + Σ α c δ (uᵀ z).
    Gated neurons (steering/neurons.py) add to a layer's MLP output where their gates open.
    """

    geometry: HeadGeometry
    heads: list[tuple[int, int]]
    vectors: torch.Tensor  # [n, head_dim]
    alpha: float
    scales: list[float]
    scaled_heads: list[tuple[int, int]] = field(default_factory=list)
    head_scales: list[float] = field(default_factory=list)
    rank1_heads: list[tuple[int, int]] = field(default_factory=list)
    rank1_vectors: torch.Tensor | None = None  # [n, head_dim] δ; None: no rank-1 heads
    rank1_reads: torch.Tensor | None = None  # [n, head_dim] u
    rank1_scales: list[float] = field(default_factory=list)
    neurons: tuple[GatedNeurons, ...] = ()

    def __post_init__(self) -> None:
        """Fail closed: a plan with NaN or inf anywhere would bake a broken model."""
        empty = torch.zeros(0, self.geometry.head_dim)
        self.rank1_vectors = empty if self.rank1_vectors is None else self.rank1_vectors
        self.rank1_reads = empty if self.rank1_reads is None else self.rank1_reads
        numbers = [self.alpha, *self.scales, *self.head_scales, *self.rank1_scales]
        tensors = [self.vectors, self.rank1_vectors, self.rank1_reads]
        tensors += [self.add_tensor(), self.rank1_writes()]
        finite = all(map(math.isfinite, numbers)) and all(torch.isfinite(t).all() for t in tensors)
        finite = finite and all(n.is_finite() for n in self.neurons)
        if not finite:
            raise GcmEditError(
                "steering plan holds NaN or inf (α, scales, steering vectors, reads or α·c·δ): "
                "the model's activations or the options overflowed; nothing is baked from it"
            )

    @classmethod
    def from_scores(
        cls,
        scores: torch.Tensor,
        deltas: torch.Tensor,
        k_percent: float,
        alpha: float,
        intervention: str = "additive",
        means: torch.Tensor | None = None,
    ) -> SteeringPlan:
        """The top-k% heads by score, steered as `for_heads` says."""
        return cls.for_heads(select_heads(scores, k_percent), deltas, alpha, intervention, means)

    @classmethod
    def for_heads(
        cls,
        heads: list[tuple[int, int]],
        deltas: torch.Tensor,
        alpha: float,
        intervention: str = "additive",
        means: torch.Tensor | None = None,
    ) -> SteeringPlan:
        """`heads` get α·δ added ("additive"), their output multiplied by α ("scale"), or
        α·δ·(uᵀz) added ("rank1", u = z̄/‖z̄‖², see `read_vector`).

        `deltas` is δ for every head, [layers, heads, head_dim]: it also gives the geometry;
        `means` (rank1 only) is z̄, the original runs' mean z at the same positions, same shape.
        """
        geometry = HeadGeometry(*deltas.shape)
        empty = torch.zeros(0, geometry.head_dim)
        if intervention == "scale":
            return cls(geometry, [], empty, alpha, [], heads, [alpha] * len(heads))
        vectors = torch.stack([deltas[layer, head] for layer, head in heads])
        if intervention == "rank1":
            if means is None:
                raise ValueError("rank1 steering needs the original runs' mean head outputs")
            return cls(
                geometry,
                [],
                empty,
                alpha,
                [],
                rank1_heads=heads,
                rank1_vectors=vectors,
                rank1_reads=torch.stack([read_vector(means, *head) for head in heads]),
                rank1_scales=[1.0] * len(heads),
            )
        return cls(geometry, heads, vectors, alpha, [1.0] * len(heads))

    @classmethod
    def compose(cls, plans: list[SteeringPlan]) -> SteeringPlan:
        """One plan doing all of them: additions and rank-1 edits sum, head scales multiply
        (z ← Πs ⊙ z + Σa + Σ αcδ(uᵀz)).

        Each plan's α is folded into its heads' scales c, so the composite has α = 1.
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
            [h for p in plans for h in p.rank1_heads],
            torch.cat([p.rank1_vectors.float() for p in plans]),
            torch.cat([p.rank1_reads.float() for p in plans]),
            [p.alpha * c for p in plans for c in p.rank1_scales],
            tuple(n for p in plans for n in p.neurons),
        )

    def dosed(self, dose: float) -> SteeringPlan:
        """The plan at `dose` times its edit, the knob a LoRA scale turns: additions and
        rank-1 pushes scale with α, head scales move from 1 by `dose`·(s − 1), neurons' output
        by `dose`. Dose 0 is the base model, 1 the plan itself."""
        return replace(
            self,
            alpha=self.alpha * dose,
            head_scales=[1.0 + dose * (s - 1.0) for s in self.head_scales],
            neurons=tuple(n.dosed(dose) for n in self.neurons),
        )

    @property
    def steered_heads(self) -> list[tuple[int, int]]:
        """Distinct heads the plan touches, additive, scaled or rank-1."""
        return sorted(set(self.heads) | set(self.scaled_heads) | set(self.rank1_heads))

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

    def rank1_writes(self) -> torch.Tensor:
        """α·c·δ of each rank-1 head: [n, head_dim]."""
        pushes = torch.tensor([self.alpha * c for c in self.rank1_scales]).view(-1, 1)
        return pushes * self.rank1_vectors.float()

    def rank1_factors(self) -> Rank1:
        """Per layer with rank-1 heads, (reads, writes) [r, heads*head_dim]: row i holds u_i,
        resp. α·c_i·δ_i, on its head's slice, so the layer's edit is z + (z·readsᵀ)·writes."""
        g = self.geometry
        writes = self.rank1_writes()
        factors = {}
        for layer in sorted({layer for layer, _ in self.rank1_heads}):
            rows = [i for i, (at, _) in enumerate(self.rank1_heads) if at == layer]
            reads = torch.zeros(len(rows), g.n_heads * g.head_dim)
            pushes = torch.zeros_like(reads)
            for j, i in enumerate(rows):
                cols = g.head_slice(self.rank1_heads[i][1])
                reads[j, cols] = self.rank1_reads[i].float()
                pushes[j, cols] = writes[i]
            factors[layer] = (reads, pushes)
        return factors

    @contextmanager
    def apply(self, model, device=None) -> Iterator[None]:
        """Context manager: the hooked steered model (the reference every export must equal)."""
        device = device or next(model.parameters()).device
        scale = self.scale_tensor()
        heads = intervene(
            model,
            add=self.add_tensor().to(device) if self.heads else None,
            scale=None if scale is None else scale.to(device),
            rank1={
                layer: (reads.to(device), writes.to(device))
                for layer, (reads, writes) in self.rank1_factors().items()
            },
        )
        neurons = [n.hook(device) for n in self.neurons]
        with heads, add_neurons(model, neurons):
            yield

    def fingerprint(self) -> str:
        """Identifies the intervention itself (cache key for steered answers)."""
        scale = self.scale_tensor()
        digest = hashlib.sha256(self.add_tensor().numpy().tobytes())
        if scale is not None:
            digest.update(scale.numpy().tobytes())
        if self.rank1_heads:  # only then, so plans without rank-1 heads keep their keys
            digest.update(json.dumps(self.rank1_heads).encode())
            digest.update(self.rank1_reads.float().numpy().tobytes())
            digest.update(self.rank1_writes().numpy().tobytes())
        for neurons in self.neurons:  # likewise
            digest.update(neurons.digest())
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
        """One row per steered head (additive, scaled, then rank-1), for the manifest and model
        card; with `head_norm`, additive rows also give their push (see `pushes`)."""
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
        rows += [
            {"layer": layer, "head": head, "rank1_scale": c, "delta_norm": float(vector.norm())}
            for (layer, head), vector, c in zip(
                self.rank1_heads, self.rank1_vectors, self.rank1_scales, strict=True
            )
        ]
        return rows

    def save(self, folder: Path) -> None:
        """δ vectors (and rank-1 reads) as safetensors plus a JSON header, so the hooked model
        can be rebuilt."""
        tensors = {
            "vectors": self.vectors,
            "rank1_vectors": self.rank1_vectors,
            "rank1_reads": self.rank1_reads,
        }
        for i, neurons in enumerate(self.neurons):
            tensors |= neurons.tensors(f"neurons.{i}.")
        save_file(
            {name: t.contiguous().float() for name, t in tensors.items()},
            str(folder / PLAN_TENSORS),
        )
        meta = {
            "geometry": vars(self.geometry),
            "heads": self.heads,
            "alpha": self.alpha,
            "scales": self.scales,
            "scaled_heads": self.scaled_heads,
            "head_scales": self.head_scales,
            "rank1_heads": self.rank1_heads,
            "rank1_scales": self.rank1_scales,
            "neuron_layers": [n.layer for n in self.neurons],
        }
        (folder / "gcm_edit_plan.json").write_text(json.dumps(meta, indent=2) + "\n")

    @classmethod
    def load(cls, folder: Path) -> SteeringPlan:
        """The saved plan; files written before rank-1 steering existed load without it."""
        meta = json.loads((folder / "gcm_edit_plan.json").read_text())
        tensors = load_file(str(folder / PLAN_TENSORS))
        return cls(
            HeadGeometry(**meta["geometry"]),
            [tuple(h) for h in meta["heads"]],
            tensors["vectors"],
            meta["alpha"],
            meta["scales"],
            [tuple(h) for h in meta["scaled_heads"]],
            meta["head_scales"],
            [tuple(h) for h in meta.get("rank1_heads", [])],
            tensors.get("rank1_vectors"),
            tensors.get("rank1_reads"),
            meta.get("rank1_scales", []),
            tuple(
                GatedNeurons.from_tensors(layer, tensors, f"neurons.{i}.")
                for i, layer in enumerate(meta.get("neuron_layers", []))
            ),
        )


def read_vector(means: torch.Tensor, layer: int, head: int) -> torch.Tensor:
    """u = z̄/‖z̄‖² for one head, so that uᵀz̄ = 1: rank-1 steering adds α·c·δ at the head's
    typical activity and scales with it elsewhere."""
    mean = means[layer, head].float()
    norm = float(mean.norm())
    if norm < MIN_READ_NORM:
        raise GcmEditError(
            f"head L{layer}.H{head} is silent on the original runs (‖mean z‖ = {norm:.2g}): "
            "rank-1 steering cannot read it; use --intervention additive"
        )
    return mean / norm**2
