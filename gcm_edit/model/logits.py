"""Next-token distributions over the whole vocabulary, a chunk of positions at a time.

Materialising [batch, tokens, vocabulary] logits costs gigabytes on a 262k-token vocabulary
(8 answers of 300 tokens: 2.5 GB, and as much again for their log-softmax). So the final
hidden states are gathered at the positions that predict a response token, and the vocabulary
projection and log-softmax run per chunk of them. Distillation compares two full
distributions at every response token and runs its chunks under activation checkpointing:
backward recomputes a chunk's logits instead of keeping them.
"""

from __future__ import annotations

import torch
from torch.utils.checkpoint import checkpoint

from gcm_edit.model.batches import TokenBatch

CHUNK = 64  # positions per vocabulary projection


def final_states(model, batch: TokenBatch) -> torch.Tensor:
    """Final hidden states at every position, [B, T, hidden]: `project` turns them into the
    model's own next-token distributions. Taken from the decoder inside a forward of the
    whole model (one position's logits): a sharded model (FSDP) gathers its outer weights,
    the head's included, only there."""
    kept: list[torch.Tensor] = []
    hook = model.get_decoder().register_forward_hook(
        lambda _module, _args, output: kept.append(output.last_hidden_state)
    )
    try:
        batch.run(model, logits_to_keep=1)
    finally:
        hook.remove()
    return kept[0]


def predicting_states(model, batch: TokenBatch) -> torch.Tensor:
    """Final hidden states at the positions that predict each response token: [N, hidden],
    row-major (sequence, then position), so two batches with the same responses line up."""
    return final_states(model, batch)[:, :-1][batch.response_mask[:, 1:]]


def project(model, hidden: torch.Tensor) -> torch.Tensor:
    """Log-probabilities of the next token from final hidden states (logit soft-capping as the
    model's own head applies it, for the families that have it)."""
    logits = model.get_output_embeddings()(hidden)
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
    cap = getattr(model.config, "final_logit_softcapping", None)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return torch.log_softmax(logits, dim=-1)


def _chunk_token_logprob(model, states: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    return project(model, states).gather(-1, tokens[:, None]).squeeze(-1)


def response_logprob(model, batch: TokenBatch, chunk: int = CHUNK) -> torch.Tensor:
    """Σ_t log π(response_t | prefix) per sequence, teacher-forced: shape [B]. Only the
    positions that predict a response token are projected, `chunk` at a time; under autograd
    (attribution scoring) each chunk is recomputed in the backward pass instead of kept."""
    states = predicting_states(model, batch)
    predicts = batch.response_mask[:, 1:]
    tokens = batch.input_ids[:, 1:][predicts]
    recompute = torch.is_grad_enabled() and states.requires_grad

    def piece(start: int) -> torch.Tensor:
        args = (model, states[start : start + chunk], tokens[start : start + chunk])
        if recompute:
            return checkpoint(_chunk_token_logprob, *args, use_reentrant=False)
        return _chunk_token_logprob(*args)

    pieces = [piece(start) for start in range(0, len(states), chunk)]
    token_lp = torch.cat(pieces) if pieces else states.new_zeros(0, dtype=torch.float32)
    total = torch.zeros(len(batch.input_ids), dtype=token_lp.dtype, device=token_lp.device)
    return total.index_add(0, predicts.nonzero()[:, 0], token_lp)


def _chunk_kl(model, teacher: torch.Tensor, student: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        target = project(model, teacher)
    return (target.exp() * (target - project(model, student))).sum()


def _chunk_nll(model, student: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    return -project(model, student).gather(-1, tokens[:, None]).sum()


def distillation_loss(
    model,
    teacher: torch.Tensor,
    student: torch.Tensor,
    forced: torch.Tensor,
    tokens: torch.Tensor,
    chunk: int = CHUNK,
) -> torch.Tensor:
    """Σ over positions of KL(p_teacher ‖ p_student), where `forced` positions (a prefilled
    response start the teacher did not choose) take the token itself as the target (KL to a
    one-hot = its negative log-likelihood). `teacher`, `student`: [N, hidden]; `forced` [N]
    bool; `tokens` [N] the response tokens. Never holds more than `chunk` rows of logits."""
    total = student.new_zeros((), dtype=torch.float32)
    free = (~forced).nonzero().squeeze(-1)
    fixed = forced.nonzero().squeeze(-1)
    for start in range(0, len(free), chunk):
        rows = free[start : start + chunk]
        total = total + checkpoint(
            _chunk_kl, model, teacher[rows], student[rows], use_reentrant=False
        )
    for start in range(0, len(fixed), chunk):
        rows = fixed[start : start + chunk]
        total = total + checkpoint(
            _chunk_nll, model, student[rows], tokens[rows], use_reentrant=False
        )
    return total
