"""What a distilled edit is asked to learn (`EditObjective`) and what it learned
(`LearnedEdit`: the heads' b, W, R and any gated neurons at each snapshot, each a plan)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gcm_edit.model.heads import HeadGeometry
from gcm_edit.steering.neurons import PARTS, GatedNeurons
from gcm_edit.steering.plan import SteeringPlan


@dataclass(frozen=True)
class EditObjective:
    rank: int  # r of each head's map A_h; 0: vectors only
    lr: float  # Adam step, relative to a head's typical output per coordinate
    steps: int
    kl_target: float  # KL per neutral token the multiplier holds the edit to
    lambda_f: float  # the multiplier's starting value
    seed: int
    snapshot_every: int  # steps between the snapshots early stopping chooses from
    neutral_prompts: int  # neutral prompts drawn per step for the KL constraint
    # the constraint also holds the base model's own continuations of the neutral prompts
    neutral_continuations: bool = False
    neurons: int = 0  # gated neurons appended to one layer's MLP (steering/neurons.py)
    neuron_layer: int = 0  # ...that layer


@dataclass
class LearnedEdit:
    """Candidate heads' b (and W, R, and neurons G, U, D) at each snapshot; step 0 is the
    starting plan."""

    heads: list[tuple[int, int]]
    history: list[dict]  # one row per optimiser step
    # {"step", "vectors" [n][d], "writes"/"reads" [n][r][d], with neurons "neurons":
    # {"layer", "gate"/"up" [m][hidden], "down" [hidden][m]}}
    snapshots: list[dict]
    self_kept: int = 0  # the student's own answers self-training learned (SelfTraining)

    def plan(self, geometry: HeadGeometry, step: int) -> SteeringPlan:
        """The snapshot at `step` as a plan: b additive, each non-zero column pair of A_h one
        rank-1 component (write W_h[:, j], read R_h[:, j]), neurons whose D is non-zero, all
        at α = 1."""
        snap = next(s for s in self.snapshots if s["step"] == step)
        vectors = torch.tensor(snap["vectors"], dtype=torch.float32)
        writes = torch.tensor(snap["writes"], dtype=torch.float32)  # [n, r, d]
        reads = torch.tensor(snap["reads"], dtype=torch.float32)
        parts = [
            (head, writes[i, j], reads[i, j])
            for i, head in enumerate(self.heads)
            for j in range(writes.shape[1])
            if writes[i, j].any() and reads[i, j].any()
        ]
        neurons = ()
        if "neurons" in snap:
            given = snap["neurons"]
            tensors = {part: torch.tensor(given[part], dtype=torch.float32) for part in PARTS}
            if tensors["down"].any():
                neurons = (GatedNeurons(given["layer"], **tensors),)
        empty = torch.zeros(0, geometry.head_dim)
        return SteeringPlan(
            geometry,
            list(self.heads),
            vectors,
            1.0,
            [1.0] * len(self.heads),
            rank1_heads=[head for head, _, _ in parts],
            rank1_vectors=torch.stack([w for _, w, _ in parts]) if parts else empty,
            rank1_reads=torch.stack([r for _, _, r in parts]) if parts else empty,
            rank1_scales=[1.0] * len(parts),
            neurons=neurons,
        )
