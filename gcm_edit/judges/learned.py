"""A judge for any concept, learned from the contrast the model itself shows.

The base model answers the training questions with the directive and without it; a ridge
logistic probe on the base model's mean hidden state over an answer's tokens (middle layer)
tells the two apart. Its trust is measured, not assumed: the out-of-fold AUC over training
questions (folds split by question, so both answers to one question are held out together).
An answer the probe was fitted on is judged by the fold's probe that did not see it, so the
contrastive pairs are filtered by honest verdicts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict

from gcm_edit.model.batches import TokenBatch, by_length
from gcm_edit.model.logistic import PairedProbe, auc, out_of_fold

MAX_TOKENS = 256  # an answer's tokens read for its features (answers are ~100 tokens)
WEAK_AUC = 0.8  # below this the card warns that the judge is weak
FOLLOWED_AUC = 0.65  # below this the model barely changes its answers: nothing to learn


def feature_layer(n_layers: int) -> int:
    """The middle layer's output: hidden_states[i] is after i layers (0: the embeddings)."""
    return (n_layers + 1) // 2


@torch.no_grad()
def answer_features(
    model, tokenizer, texts: list[str], layer: int, batch_size: int = 8
) -> torch.Tensor:
    """[len(texts), d] float64: the mean of `layer`'s hidden state over each answer's tokens,
    read as plain text after a start token (as fluency perplexity reads it)."""
    start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else start
    device = next(model.parameters()).device
    ids = [tokenizer(t, add_special_tokens=False)["input_ids"][:MAX_TOKENS] for t in texts]
    ids = [t or [start] for t in ids]

    def means(chunk: list[int]) -> torch.Tensor:
        batch = TokenBatch.build([[start]] * len(chunk), [ids[i] for i in chunk], pad).to(device)
        states = batch.run(model, output_hidden_states=True).hidden_states[layer]
        mask = batch.response_mask.unsqueeze(-1).to(states.dtype)
        return ((states * mask).sum(1) / mask.sum(1)).double().cpu()

    return by_length([len(i) for i in ids], batch_size, means)


class JudgeTrust(BaseModel):
    """How far a learned judge can be trusted, measured out of fold on the training
    questions (the manifest's and the card's account of it)."""

    model_config = ConfigDict(extra="forbid")
    cv_auc: float
    followed: float  # share of answers with the directive judged to show the concept
    unchanged: float  # share of answers without it judged not to
    n_questions: int
    layer: int

    @property
    def weak(self) -> bool:
        return self.cv_auc < WEAK_AUC

    def sentence(self) -> str:
        """One plain account of the judge, with a warning when it is weak."""
        told = (
            f"a probe on the base model's layer-{self.layer} states, learned from its own answers"
            f" to {self.n_questions} training questions with and without the directive: "
            f"out-of-fold AUC {self.cv_auc:.2f}; it finds the concept in {self.followed:.0%} "
            f"of answers written with the directive and in {1 - self.unchanged:.0%} without"
        )
        if self.weak:
            told += (
                f". Warning: a weak judge (AUC below {WEAK_AUC}): its rates say little; judge "
                "with a rule (a recipe's `judge:`) or an LLM (--judge-url, --judge-model file.gguf)"
            )
        return told


@dataclass
class JudgeFit:
    """The fitted probe, its trust and its out-of-fold verdicts: the judge's cached stage."""

    mean: list[float]
    std: list[float]
    w: list[float]  # weights, then the bias
    trust: JudgeTrust
    held: dict[str, float]  # each training answer → its out-of-fold probability

    def to_json(self) -> dict:
        return {**asdict(self), "trust": self.trust.model_dump()}

    @classmethod
    def from_json(cls, data: dict) -> JudgeFit:
        return cls(**{**data, "trust": JudgeTrust.model_validate(data["trust"])})

    def probe(self) -> PairedProbe:
        as_row = lambda values: torch.tensor([values], dtype=torch.float64)  # noqa: E731
        return PairedProbe(as_row(self.mean), as_row(self.std), as_row(self.w))


def fit_judge(
    model, tokenizer, without: list[str], with_: list[str], layer: int, batch_size: int = 8
) -> JudgeFit:
    """The probe telling each question's answer with the directive (`with_`) from its answer
    without (`without`), and its out-of-fold figures."""
    features = answer_features(model, tokenizer, without + with_, layer, batch_size)
    paired = features.view(2, len(without), 1, -1).transpose(0, 1)  # [questions, 2, 1, d]
    held = out_of_fold(paired)[..., 0]  # [questions, 2]
    probe = PairedProbe.fit(paired)
    by_text: dict[str, list[float]] = {}
    for text, p in zip(without + with_, held.T.flatten().tolist(), strict=True):
        by_text.setdefault(text, []).append(p)
    trust = JudgeTrust(
        cv_auc=auc(held[:, 0], held[:, 1]),
        followed=float((held[:, 1] > 0.5).double().mean()),
        unchanged=float((held[:, 0] <= 0.5).double().mean()),
        n_questions=len(without),
        layer=layer,
    )
    return JudgeFit(
        mean=probe.mean[0].tolist(),
        std=probe.std[0].tolist(),
        w=probe.w[0].tolist(),
        trust=trust,
        held={text: sum(ps) / len(ps) for text, ps in by_text.items()},
    )


class LearnedJudge:
    """Concept present when the probe gives P > 0.5; the probability is the graded figure.
    `model()` returns the unedited base model; it is asked for only when an answer must be
    read (a run whose judged figures are all cached never loads it)."""

    label = "judge probability"

    def __init__(self, model: Callable[[], Any], tokenizer, fit: JudgeFit):
        self.model, self.tokenizer, self.fit = model, tokenizer, fit
        self._probe = fit.probe()
        self._seen: dict[str, float] = dict(fit.held)

    def probability(self, text: str) -> float:
        if text not in self._seen:
            features = answer_features(self.model(), self.tokenizer, [text], self.fit.trust.layer)
            self._seen[text] = float(self._probe.predict(features[:, None, :])[0, 0])
        return self._seen[text]

    def __call__(self, text: str) -> bool:
        return self.probability(text) > 0.5

    def grade(self, text: str) -> float:
        return self.probability(text)
