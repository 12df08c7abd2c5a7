"""response_logprob against one unpadded sequence at a time through the model's own head
(full vocabulary softmax), whatever the chunk of positions projected at once."""

from __future__ import annotations

import pytest
import torch
from tiny import family_model, make_llama

from gcm_edit.model.batches import TokenBatch, by_length, length_batches
from gcm_edit.model.logits import response_logprob

PROMPTS = [[5, 6, 7, 8, 9, 10, 11], [12, 13], [14, 15, 16, 17], [18]]
RESPONSES = [[20, 21, 22], [23, 24, 25, 26, 27], [], [28, 29]]


def _reference(model, prompt: list[int], response: list[int]) -> float:
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([prompt + response])).logits[0].double()
    logprobs = torch.log_softmax(logits, -1)
    return sum(float(logprobs[len(prompt) - 1 + t, tok]) for t, tok in enumerate(response))


@pytest.mark.parametrize("chunk", [1, 3, 64])
@pytest.mark.parametrize("model_type", ["llama", "gemma3_text", "gemma2"])
def test_response_logprob_matches_unpadded_reference(model_type, chunk):
    # rows start their responses at different positions, one has none, and a chunk of
    # positions may span rows: every row must still get its own sum. gemma2 soft-caps its
    # logits in its head, which the chunked projection must do too.
    model = make_llama(seed=3) if model_type == "llama" else family_model(model_type, 1, seed=3)
    if model_type == "gemma2":
        model.config.final_logit_softcapping = 0.5  # low enough to bend these small logits
    batch = TokenBatch.build(PROMPTS, RESPONSES, pad_id=1)
    with torch.no_grad():
        got = response_logprob(model, batch, chunk=chunk).double()
    want = [_reference(model, p, r) for p, r in zip(PROMPTS, RESPONSES, strict=True)]
    want = torch.tensor(want, dtype=torch.float64)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert got[2] == 0


def test_response_logprob_gradient_flows():
    model = make_llama(seed=3)
    batch = TokenBatch.build(PROMPTS, RESPONSES, pad_id=1)
    response_logprob(model, batch, chunk=2).sum().backward()
    assert model.model.embed_tokens.weight.grad.abs().sum() > 0


def test_length_batches_cover_every_index_once_longest_first():
    lengths = [3, 9, 1, 9, 4, 7, 2]
    batches = length_batches(lengths, 3)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert [len(b) for b in batches] == [3, 3, 1]
    seen = [lengths[i] for b in batches for i in b]
    assert seen == sorted(lengths, reverse=True)


def test_by_length_puts_each_row_back_at_its_index():
    lengths = [3, 9, 1, 9, 4, 7, 2]
    calls: list[list[int]] = []

    def rows(chunk: list[int]) -> torch.Tensor:
        calls.append(chunk)
        return torch.tensor([[float(i), float(lengths[i])] for i in chunk])

    out = by_length(lengths, 3, rows)
    torch.testing.assert_close(out[:, 0], torch.arange(len(lengths), dtype=torch.float32))
    torch.testing.assert_close(out[:, 1], torch.tensor(lengths, dtype=torch.float32))
    assert calls == length_batches(lengths, 3)
    assert by_length([], 3, rows).numel() == 0
