"""Next-token distributions over the whole vocabulary, a chunk of positions at a time.

Distillation compares two full distributions at every response token. Materialising
[batch, tokens, vocabulary] logits (and their gradients) costs gigabytes on a 262k-token
vocabulary, so the final hidden states are gathered at the positions that predict a response
token, and the vocabulary projection, log-softmax and KL run per chunk of them under
activation checkpointing: backward recomputes a chunk's logits instead of keeping them.
"""

from __future__ import annotations

import torch
from torch.utils.checkpoint import checkpoint

from gcm_edit.model.batches import TokenBatch

CHUNK = 64  # positions per vocabulary projection


def predicting_states(model, batch: TokenBatch) -> torch.Tensor:
    """Final hidden states at the positions that predict each response token: [N, hidden],
    row-major (sequence, then position), so two batches with the same responses line up."""
    hidden = model.get_decoder()(
        input_ids=batch.input_ids, attention_mask=batch.attention_mask, use_cache=False
    ).last_hidden_state
    return hidden[:, :-1][batch.response_mask[:, 1:]]


def project(model, hidden: torch.Tensor) -> torch.Tensor:
    """Log-probabilities of the next token from final hidden states (logit soft-capping as the
    model's own head applies it, for the families that have it)."""
    logits = model.get_output_embeddings()(hidden).float()
    cap = getattr(model.config, "final_logit_softcapping", None)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return torch.log_softmax(logits, dim=-1)


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
