"""From-scratch reference implementations the scoring methods are tested against.

Deliberately naive: one unpadded sequence at a time, explicit o_proj hooks, no batching,
no Lightning, nothing imported from gcm_edit.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def logprob(model, prompt: list[int], response: list[int]) -> torch.Tensor:
    """Σ_t log π(response_t | prompt ⊕ response_<t), one unpadded sequence, model dtype."""
    ids = torch.tensor([prompt + response])
    logits = model(input_ids=ids).logits[0]
    logprobs = torch.log_softmax(logits, dim=-1)
    positions = torch.arange(len(prompt) - 1, len(prompt) + len(response) - 1)
    return logprobs[positions, torch.tensor(response)].sum()


def metric(model, pair) -> torch.Tensor:
    """M = log π(r_contrast | p_orig) − log π(r_orig | p_orig)."""
    return logprob(model, pair.prompt_orig, pair.response_contrast) - logprob(
        model, pair.prompt_orig, pair.response_orig
    )


def response_logprobs(model, prompt: list[int], response: list[int]) -> torch.Tensor:
    """log π(· | prompt ⊕ response_<t) at each response position: [len(response), vocab]."""
    logits = model(input_ids=torch.tensor([prompt + response])).logits[0]
    positions = torch.arange(len(prompt) - 1, len(prompt) + len(response) - 1)
    return torch.log_softmax(logits, dim=-1)[positions]


def distillation_loss(model, pair, teacher: torch.Tensor) -> torch.Tensor:
    """Σ_t KL(teacher_t ‖ π(· | p_orig ⊕ r_contrast<t)); `teacher`: the unpatched model's
    `response_logprobs(model, p_contrast, r_contrast)`."""
    student = response_logprobs(model, pair.prompt_orig, pair.response_contrast)
    return (teacher.exp() * (teacher - student)).sum()


def o_proj(model, layer: int):
    return model.model.layers[layer].self_attn.o_proj


def head_dims(model) -> tuple[int, int, int]:
    c = model.config
    return c.num_hidden_layers, c.num_attention_heads, c.head_dim


@torch.no_grad()
def exact_effects(
    model,
    pairs,
    patch: Callable[[int, int, torch.Tensor], torch.Tensor],
    measure: Callable = metric,
) -> torch.Tensor:
    """(1/N) Σ_pairs m(patched) − m() for every head, m = `measure(model, pair)` (default M);
    `patch(layer, head, z_head)` → new z_head."""
    n_layers, n_heads, d = head_dims(model)
    base = torch.stack([measure(model, p) for p in pairs])
    effects = torch.zeros(n_layers, n_heads, dtype=torch.float64)
    for layer in range(n_layers):
        for head in range(n_heads):

            def hook(_m, args, layer=layer, head=head):
                z = args[0].clone()
                z[..., head * d : (head + 1) * d] = patch(
                    layer, head, z[..., head * d : (head + 1) * d]
                )
                return (z,)

            handle = o_proj(model, layer).register_forward_pre_hook(hook)
            try:
                patched = torch.stack([measure(model, p) for p in pairs])
            finally:
                handle.remove()
            effects[layer, head] = (patched - base).double().mean()
    return effects


@torch.no_grad()
def record_z(model, ids: list[int]) -> list[torch.Tensor]:
    """o_proj input of every layer for one unpadded sequence: [T, heads*head_dim] each."""
    seen = []
    handles = [
        o_proj(model, layer).register_forward_pre_hook(lambda _m, args: seen.append(args[0][0]))
        for layer in range(model.config.num_hidden_layers)
    ]
    try:
        model(input_ids=torch.tensor([ids]))
    finally:
        for h in handles:
            h.remove()
    return seen


@torch.no_grad()
def positionwise_effects(model, pairs, eps: float) -> torch.Tensor:
    """(1/N) Σ_pairs Σ_rows of M: exact effect of z ← z + ε(z_contrast − z) on one head.

    Row p_orig ⊕ r's counterpart is p_contrast ⊕ r (same response, aligned positions).
    Each row's metric term is patched with its own counterpart.
    """
    n_layers, n_heads, d = head_dims(model)
    effects = torch.zeros(n_layers, n_heads, dtype=torch.float64)
    for pair in pairs:
        for sign, response in ((1.0, pair.response_contrast), (-1.0, pair.response_orig)):
            z_contrast = record_z(model, pair.prompt_contrast + response)
            base = logprob(model, pair.prompt_orig, response)
            for layer in range(n_layers):
                for head in range(n_heads):
                    cols = slice(head * d, (head + 1) * d)

                    def hook(_m, args, layer=layer, cols=cols, zc=z_contrast):
                        z = args[0].clone()
                        z[0, :, cols] += eps * (zc[layer][:, cols] - z[0, :, cols])
                        return (z,)

                    handle = o_proj(model, layer).register_forward_pre_hook(hook)
                    try:
                        patched = logprob(model, pair.prompt_orig, response)
                    finally:
                        handle.remove()
                    effects[layer, head] += sign * (patched - base).double()
    return effects / len(pairs)
