"""A distilled edit: learn what the selected heads write from the prompted model.

Teacher: the base model with the recipe's contrast directive in context. Student: the model
asked bare, with each selected head h edited as

    z_h ← z_h + A_h z_h + b_h,      A_h = W_h R_hᵀ  (rank ≤ r; r = 0: b_h only)

b_h starts at α·δ_h (the mean-difference plan), A_h at 0 (W_h = 0, R_h random). Each step
minimises, over the teacher's kept answers y (pairs/teacher.py),

    (1/|y|) Σ_t KL( p_T(·|x⊕d, y<t) ‖ p_θ(·|x, y<t) )  +  λ · KL(p_base ‖ p_θ on neutral prompts)

with λ a Lagrange multiplier holding the neutral KL to its target (steering/constraint.py),
estimated each step on a few neutral prompts drawn at random (the whole set costs more than
the distillation batch itself).
The vocabulary is never materialised for a whole batch (model/logits.py). The edit bakes
exactly: W_O[:, h] ← W_O[:, h](I + A_h) is r rank-1 updates, o_proj bias += W_O[:, h] b_h,
so the plan is an additive plan plus rank-1 components (steering/plan.py). With `neurons` m,
m gated neurons on one layer's MLP learn alongside (steering/neurons.py: D starts at 0, G and U
random), a token-specific write that bakes as a wider MLP.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from gcm_edit.model.batches import TokenBatch
from gcm_edit.model.generation import Decoding, generate
from gcm_edit.model.heads import HeadGeometry, intervene
from gcm_edit.model.logits import distillation_loss, predicting_states
from gcm_edit.model.mlp import add_neurons
from gcm_edit.model.trainers import fit_steps
from gcm_edit.pairs.teacher import TeacherExample, build_steered_set
from gcm_edit.steering.constraint import NeutralKL
from gcm_edit.steering.learned_edit import EditObjective, LearnedEdit

# of the 24 neutral prompts, for speed (docs/results.md#stage-times-and-the-cold-budget)
NEUTRAL_PER_STEP = 6


@dataclass(frozen=True)
class SelfTraining:
    """Rejection-sampled self-training: the edited student answers `questions` (best of
    `candidates`, greedy first), `keep` (the judges, reading the unedited model) keeps the
    good ones, and `steps` more steps learn them one-hot together with the teacher's."""

    steps: int
    questions: list[str]
    decoding: Decoding
    candidates: int
    generation_batch: int
    keep: Callable[[list[str], list[str]], list[bool]]

    def kept(self, model, tokenizer, edit: Callable, seed: int) -> list[TeacherExample]:
        own = build_steered_set(
            model, tokenizer, self.questions, self.decoding, self.candidates, self.keep,
            self.generation_batch, seed, edit, "student answers, judged",
        )  # fmt: skip
        return own.examples


@dataclass
class DistillBatch:
    student: TokenBatch
    teacher: torch.Tensor  # [N, hidden] the teacher's states at the same response positions
    forced: torch.Tensor  # [N] bool
    tokens: torch.Tensor  # [N] the response tokens predicted

    def to(self, device) -> DistillBatch:
        return DistillBatch(
            self.student.to(device),
            self.teacher.to(device),
            self.forced.to(device),
            self.tokens.to(device),
        )


def _response_rows(example: TeacherExample) -> tuple[torch.Tensor, torch.Tensor]:
    """(forced [n], tokens [n]) for the positions predicting the response's tokens."""
    tokens = torch.tensor(example.response)
    forced = torch.arange(len(tokens)) < example.forced
    return forced, tokens


@torch.no_grad()
def teacher_states(
    model, examples: list[TeacherExample], pad_id: int, batch_size: int
) -> list[torch.Tensor]:
    """The teacher's final hidden states predicting each response token, per example (on the
    CPU: [len(response), hidden] each); computed once, the teacher does not change."""
    device = next(model.parameters()).device
    out: list[torch.Tensor] = []
    for start in range(0, len(examples), batch_size):
        chunk = examples[start : start + batch_size]
        batch = TokenBatch.build(
            [e.teacher_prompt for e in chunk], [e.response for e in chunk], pad_id
        ).to(device)
        states = predicting_states(model, batch).float().cpu()
        out += list(states.split([len(e.response) for e in chunk]))
    return out


def collate(examples: list[tuple[TeacherExample, torch.Tensor]], pad_id: int) -> DistillBatch:
    rows = [_response_rows(e) for e, _ in examples]
    return DistillBatch(
        TokenBatch.build(
            [e.student_prompt for e, _ in examples], [e.response for e, _ in examples], pad_id
        ),
        torch.cat([states for _, states in examples]),
        torch.cat([forced for forced, _ in rows]),
        torch.cat([tokens for _, tokens in rows]),
    )


class EditLearner(L.LightningModule):
    def __init__(
        self,
        model,
        heads: list[tuple[int, int]],
        init: torch.Tensor,  # [n, d] b at step 0
        head_norm: torch.Tensor,  # [n] E‖z_h‖, the scale of each head's output
        neutral: NeutralKL,
        objective: EditObjective,
    ):
        super().__init__()
        self.model = model
        self.geometry = HeadGeometry.of(model.config)
        self.heads = heads
        self.objective = objective
        self.neutral = neutral
        d, r = self.geometry.head_dim, objective.rank
        generator = torch.Generator().manual_seed(objective.seed)
        norm = head_norm.float().clamp(min=1e-6)
        self.register_buffer("norm", norm)
        self.b = nn.Parameter(init.float().clone())
        self.w = nn.Parameter(torch.zeros(len(heads), d, r))
        reads = torch.randn(len(heads), d, r, generator=generator) / norm[:, None, None]
        self.r = nn.Parameter(reads)
        m, hidden = objective.neurons, model.config.hidden_size
        gates = torch.randn(2, m, hidden, generator=generator) / math.sqrt(hidden)
        self.gate, self.up = nn.Parameter(gates[0]), nn.Parameter(gates[1])
        self.down = nn.Parameter(torch.zeros(hidden, m))
        self.by_layer: dict[int, list[int]] = {}
        for i, (layer, _) in enumerate(heads):
            self.by_layer.setdefault(layer, []).append(i)
        self.history: list[dict] = []
        self.snapshots: list[dict] = []
        self.draws = torch.Generator().manual_seed(objective.seed + 1)  # neutral prompts
        self.last_step = objective.steps  # the step the current fit ends at

    def snapshot(self, step: int) -> None:
        def rows(t: torch.Tensor) -> list:
            return t.detach().cpu().tolist()

        snap = {
            "step": step,
            "vectors": rows(self.b),
            "writes": rows(self.w.transpose(1, 2)),  # [n, r, d]
            "reads": rows(self.r.transpose(1, 2)),
        }
        if self.objective.neurons:
            snap["neurons"] = {"layer": self.objective.neuron_layer} | {
                part: rows(getattr(self, part)) for part in ("gate", "up", "down")
            }
        self.snapshots.append(snap)

    def _placed(self, rows: torch.Tensor, head: int) -> torch.Tensor:
        """[k, d] rows written onto head `head`'s slice of a [k, heads*d] matrix."""
        g = self.geometry
        return F.pad(rows, (head * g.head_dim, (g.n_heads - head - 1) * g.head_dim))

    @contextmanager
    def edit(self) -> Iterator[None]:
        """The differentiable hooks for the current b, W, R (and G, U, D): the same
        `intervene` and `add_neurons` the plan uses, so what is trained is what is baked."""
        g = self.geometry
        add = torch.zeros(g.n_layers, g.n_heads, g.head_dim, device=self.device)
        index = (
            torch.tensor([h[0] for h in self.heads], device=self.device),
            torch.tensor([h[1] for h in self.heads], device=self.device),
        )
        add = add.index_put(index, self.b, accumulate=True).view(g.n_layers, -1)
        rank1 = {}
        if self.objective.rank:
            for layer, members in self.by_layer.items():
                heads = [self.heads[i][1] for i in members]
                reads = [self._placed(self.r[i].T, h) for i, h in zip(members, heads, strict=True)]
                writes = [self._placed(self.w[i].T, h) for i, h in zip(members, heads, strict=True)]
                rank1[layer] = (torch.cat(reads), torch.cat(writes))
        neurons = []
        if self.objective.neurons:
            neurons = [(self.objective.neuron_layer, self.gate, self.up, self.down)]
        with intervene(self.model, add=add, rank1=rank1), add_neurons(self.model, neurons):
            yield

    def on_fit_start(self) -> None:
        self.neutral.start(self.model, self.device)
        if not self.snapshots:  # a second (on-policy) fit goes on from where the first ended
            self.snapshot(0)

    def on_train_epoch_start(self) -> None:
        self.model.eval()  # fit() switches modules to train mode; the frozen model stays in eval

    def training_step(self, batch: DistillBatch, batch_idx: int) -> torch.Tensor:
        with self.edit():
            student = predicting_states(self.model, batch.student)
            rows = self.neutral.sample(self.objective.neutral_prompts, self.draws)
            kl = self.neutral.kl(self.model, self.device, rows)
        distill = distillation_loss(
            self.model, batch.teacher, student, batch.forced, batch.tokens
        ) / len(batch.tokens)
        loss = distill + self.neutral.multiplier * kl
        row = {
            "loss": float(loss.detach()),
            "distill_kl": float(distill.detach()),
            "kl": float(kl.detach()),
            "lambda": self.neutral.multiplier,
        }
        self.history.append(row)
        self.log_dict(row, prog_bar=True, on_step=True)
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        self.neutral.update(self.history[-1]["kl"])
        step = len(self.history)
        if step % self.objective.snapshot_every == 0 or step == self.last_step:
            self.snapshot(step)

    def configure_optimizers(self):
        """Steps relative to each quantity's own scale: b, W and D in units of a head's output
        per coordinate (E‖z‖/√d), R in units of 1/E‖z‖, G and U of their start (1/√hidden)."""
        lr, d = self.objective.lr, self.geometry.head_dim
        out_scale = float(self.norm.mean()) / math.sqrt(d)
        groups = [{"params": [self.b], "lr": lr * out_scale}]
        if self.objective.rank:
            groups += [
                {"params": [self.w], "lr": lr * out_scale},
                {"params": [self.r], "lr": lr / float(self.norm.mean())},
            ]
        if self.objective.neurons:
            hidden = self.gate.shape[1]
            groups += [
                {"params": [self.down], "lr": lr * out_scale},
                {"params": [self.gate, self.up], "lr": lr / math.sqrt(hidden)},
            ]
        return torch.optim.Adam(groups)

    def transfer_batch_to_device(self, batch, device, dataloader_idx: int):
        return batch.to(device)


def learn_edit(
    model,
    tokenizer,
    examples: list[TeacherExample],
    heads: list[tuple[int, int]],
    init: torch.Tensor,
    head_norm: torch.Tensor,
    objective: EditObjective,
    batch_size: int,
    on_policy: tuple[int, Decoding, int] | None = None,
    continuations: list[list[int]] | None = None,
    self_training: SelfTraining | None = None,
) -> LearnedEdit:
    """Fit the heads' edit to the teacher's answers with a Lightning Trainer; the model's
    weights are unchanged. `on_policy` = (steps, decoding, generation batch): then the
    student answers the same questions itself and the teacher scores those answers for that
    many more steps (snapshots go on; the caller's early stopping decides if it helped).
    `self_training`: then the student answers, the judges keep, and it learns its kept
    answers (one-hot) with the teacher's for that many more steps.
    `continuations`: the base model's own continuations of the neutral prompts, required
    when the objective holds KL on them."""
    if objective.neutral_continuations != (continuations is not None):
        raise ValueError("give the base continuations exactly when the objective holds them")
    neutral = NeutralKL(tokenizer, objective.kl_target, objective.lambda_f, continuations)
    learner = EditLearner(model, heads, init, head_norm, neutral, objective)
    state = (model.training, [p.requires_grad for p in model.parameters()])
    model.requires_grad_(False)
    try:
        _fit(learner, tokenizer, examples, objective.steps, batch_size)
        if on_policy is not None:
            steps, decoding, generation_batch = on_policy
            prompts = [e.student_prompt for e in examples]
            with learner.edit():
                answers = generate(
                    model, tokenizer, prompts, decoding, generation_batch, "student answers"
                )
            own = [
                replace(e, response=answer, forced=0, text="", candidate=-1)
                for e, answer in zip(examples, answers, strict=True)
                if answer
            ]
            learner.last_step = objective.steps + steps
            _fit(learner, tokenizer, own, steps, batch_size)
        kept = []
        if self_training is not None:
            kept = self_training.kept(model, tokenizer, learner.edit, objective.seed)
            learner.last_step = len(learner.history) + self_training.steps
            _fit(learner, tokenizer, examples + kept, self_training.steps, batch_size)
    finally:
        model.train(state[0])
        for param, flag in zip(model.parameters(), state[1], strict=True):
            param.requires_grad_(flag)
    return LearnedEdit(list(heads), learner.history, learner.snapshots, len(kept))


def _fit(
    learner: EditLearner, tokenizer, examples: list[TeacherExample], steps: int, batch_size: int
) -> None:
    """`steps` optimiser steps on `examples`, the teacher's states computed once for them."""
    pad = tokenizer.pad_token_id
    model = learner.model
    device = next(model.parameters()).device
    states = teacher_states(model, examples, pad, batch_size)
    loader = DataLoader(
        list(zip(examples, states, strict=True)),
        batch_size=batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(learner.objective.seed + len(learner.history)),
        collate_fn=lambda b: collate(b, pad),
    )
    fit_steps(learner, loader, steps, device)
    model.to(device)
