"""Relevance: is the answer still about the question? Judged by the base model itself.

Pointwise mutual information per answer token,

    PMI = [log p(answer | its question) − mean_j log p(answer | other question j)] / T,

positive when the question makes the answer more likely than other questions do. The other
questions are the next `N_OTHERS` of the same split (cyclically), and only the answer's first
`ANSWER_TOKENS` tokens are scored (whether an answer addresses its question shows early), so
the cost is (1 + N_OTHERS) short teacher-forced forwards per answer, no generation.

The threshold, 0.5 nats per token, was set by measurement on the default model's held-out
answers (docs/results.md): every one of its 128 own answers scores above it on its own
question (median 1.58), and 119 of the same answers moved onto another question score
below it (median 0.03).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from gcm_edit.inputs.prompts import bare_prompts
from gcm_edit.model.batches import TokenBatch, by_length
from gcm_edit.model.logits import response_logprob

N_OTHERS = 2
ANSWER_TOKENS = 32
MIN_PMI = 0.5  # nats per token
RELEVANCE = {"others": N_OTHERS, "tokens": ANSWER_TOKENS, "min_pmi": MIN_PMI}  # in cache keys


@torch.no_grad()
def relevance_pmi(
    model,
    tokenizer,
    questions: list[str],
    answers: list[str],
    batch_size: int = 8,
    scored: Sequence[int] | None = None,
) -> list[float]:
    """PMI per answer token of each answer with its own question (see the module docstring);
    with `scored`, of those answers only, still against the next questions of the whole list
    (so an answer's figure does not depend on which other answers are scored)."""
    n = len(questions)
    scored = range(n) if scored is None else scored
    others = min(N_OTHERS, n - 1)
    prompts = bare_prompts(tokenizer, questions)
    answer_ids = [
        tokenizer(a, add_special_tokens=False)["input_ids"][:ANSWER_TOKENS] or [0] for a in answers
    ]
    # row (i, j): answer i after question (i + j) mod n; j = 0 is its own question
    rows = [(i, (i + j) % n) for i in scored for j in range(others + 1)]
    device = next(model.parameters()).device
    lengths = [len(prompts[q]) + len(answer_ids[a]) for a, q in rows]

    def logprobs(chunk: list[int]) -> torch.Tensor:
        batch = TokenBatch.build(
            [prompts[rows[r][1]] for r in chunk],
            [answer_ids[rows[r][0]] for r in chunk],
            _pad(tokenizer),
        ).to(device)
        return response_logprob(model, batch).double().cpu()

    logprob = by_length(lengths, batch_size, logprobs)
    table = logprob.view(len(scored), others + 1)
    own, other = table[:, 0], table[:, 1:].mean(1) if others else table[:, 0]
    return [float(x) for x in (own - other) / torch.tensor([len(answer_ids[i]) for i in scored])]


def _pad(tokenizer) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
