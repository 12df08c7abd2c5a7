"""Random stand-ins for the pipeline's work, shared by the cost benches (scale.py,
live_tensors.py): what a stage costs depends on how many tokens it sees, not on what they say.
"""

from __future__ import annotations

from collections.abc import Callable

EDIT_RANK = 4  # the distilled edit's default rank
ANSWERS_PER_STEP = 4


def token_source(vocab: int, seed: int) -> Callable[[int], list[int]]:
    """`n` → n random token ids in [3, vocab) (below 3: the special tokens), one stream."""
    import torch

    g = torch.Generator().manual_seed(seed)
    return lambda n: torch.randint(3, vocab, (n,), generator=g).tolist()


def random_pairs(ids: Callable[[int], list[int]], n: int, prompt: int, answer: int) -> list:
    """`n` contrastive pairs: two `prompt`-token prompts, two `answer`-token responses."""
    from gcm_edit.pairs.contrastive import Pair

    return [
        Pair(f"q{i}", ids(prompt), ids(prompt), ids(answer), ids(answer), "", "") for i in range(n)
    ]


def teacher_answers(ids: Callable[[int], list[int]], n: int, prompt: int, answer: int) -> list:
    """`n` teacher answers: the bare prompt, the directed one 8 tokens longer, the answer."""
    from gcm_edit.pairs.teacher import TeacherExample

    return [
        TeacherExample(f"q{i}", ids(prompt), ids(prompt + 8), ids(answer), 0, "", 0)
        for i in range(n)
    ]


def spread_heads(n_layers: int, n_heads: int, share: float = 0.05) -> list[tuple[int, int]]:
    """`share` of the heads, spread over the layers (5%: 14 of 270, the default's k when the
    memory and scale tables were measured)."""
    count = max(1, round(share * n_layers * n_heads))
    return [(i % n_layers, i % n_heads) for i in range(count)]


def edit_objective(steps: int):
    """The distilled edit's objective for `steps` optimiser steps (of ANSWERS_PER_STEP
    answers, learn_edit's batch size): rank 4, KL held to 0.5 on 6 neutral prompts a step."""
    from gcm_edit.steering.learned_edit import EditObjective

    return EditObjective(EDIT_RANK, 0.05, steps, 0.5, 1.0, 0, steps, 6)
