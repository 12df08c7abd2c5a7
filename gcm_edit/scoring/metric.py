"""The mediation metric M(p_orig) = log π(r_contrast | p_orig) − log π(r_orig | p_orig).

Every causal scoring method measures how an intervention on a head changes M.
"""

from __future__ import annotations

import torch

from gcm_edit.model.batches import TokenBatch
from gcm_edit.model.logits import response_logprob
from gcm_edit.pairs.contrastive import Pair


def collate_pairs(pairs: list[Pair], pad_id: int) -> TokenBatch:
    """Rows [0, B): p_orig ⊕ r_contrast; rows [B, 2B): p_orig ⊕ r_orig."""
    prompts = [p.prompt_orig for p in pairs] * 2
    responses = [p.response_contrast for p in pairs] + [p.response_orig for p in pairs]
    return TokenBatch.build(prompts, responses, pad_id)


def mediation_metric(model, batch: TokenBatch, copies: int = 1) -> torch.Tensor:
    """M per pair for `copies` stacked copies of a `collate_pairs` batch: [copies, B]."""
    logprob = response_logprob(model, batch).view(copies, 2, -1)
    return logprob[:, 0] - logprob[:, 1]
