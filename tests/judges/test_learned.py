"""The learned judge: its features against a one-answer-at-a-time reference, its out-of-fold
verdicts, its AUC against a pairwise count, and what it says about its own trust."""

from __future__ import annotations

import pytest
import torch

from gcm_edit.judges.learned import (
    WEAK_AUC,
    JudgeFit,
    JudgeTrust,
    LearnedJudge,
    answer_features,
    feature_layer,
    fit_judge,
)
from gcm_edit.model.logistic import PairedProbe, auc, out_of_fold
from gcm_edit.model.tiny import make_llama, make_tokenizer

# Two kinds of answer the tiny vocabulary can write: plain prose, and "sea moon" lines.
PLAIN = [f"the cat sat on the mat {w}" for w in ("and", "with", "for", "to", "it", "you")]
SEA = [f"sea moon sea moon {w} light night" for w in ("and", "with", "for", "to", "it", "you")]


@pytest.fixture(scope="module")
def tiny():
    return make_llama(seed=3), make_tokenizer()


def test_features_are_each_answers_mean_state(tiny):
    """Batched, padded features equal one forward per answer: the mean over its tokens of
    hidden_states[layer], read after the start token."""
    model, tok = tiny
    texts = ["cat sat", "the sea moon light night and sun", "tea"]
    layer = feature_layer(model.config.num_hidden_layers)
    batched = answer_features(model, tok, texts, layer, batch_size=2)
    for row, text in zip(batched, texts, strict=True):
        ids = [tok.bos_token_id] + tok(text, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            states = model(torch.tensor([ids]), output_hidden_states=True).hidden_states[layer]
        torch.testing.assert_close(row, states[0, 1:].mean(0).double(), atol=1e-5, rtol=1e-5)


def test_auc_is_the_share_of_ordered_pairs():
    negatives = torch.tensor([0.1, 0.4, 0.35, 0.8])
    positives = torch.tensor([0.9, 0.4, 0.7])
    ordered = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in positives for n in negatives)
    assert auc(negatives, positives) == pytest.approx(ordered / 12)


def test_a_fold_is_judged_by_a_probe_that_never_saw_it():
    """Changing one pair's features moves its own out-of-fold predictions, never those of the
    other pairs in its fold (their probe is fitted without that fold)."""
    g = torch.Generator().manual_seed(0)
    features = torch.randn(10, 2, 1, 4, generator=g, dtype=torch.float64)
    features[:, 1, 0, 0] += 2.0
    before = out_of_fold(features, folds=5, seed=0)
    changed = features.clone()
    changed[3] += 5.0
    after = out_of_fold(changed, folds=5, seed=0)
    order = torch.randperm(10, generator=torch.Generator().manual_seed(0))
    fold = order[(order == 3).nonzero().item() % 5 :: 5].tolist()
    others = [i for i in fold if i != 3]
    assert others and torch.equal(before[others], after[others])
    assert not torch.equal(before[3], after[3])
    probe = PairedProbe.fit(features[[i for i in range(10) if i not in fold]])
    torch.testing.assert_close(before[fold], probe.predict(features[fold]))


def test_judge_learns_a_contrast_and_keeps_its_held_verdicts(tiny):
    model, tok = tiny
    fit = fit_judge(model, tok, PLAIN, SEA, feature_layer(model.config.num_hidden_layers), 4)
    assert fit.trust.cv_auc == 1.0 and fit.trust.followed == 1.0 and fit.trust.unchanged == 1.0
    assert fit.trust.n_questions == len(PLAIN) and not fit.trust.weak
    judge = LearnedJudge(lambda: model, tok, JudgeFit.from_json(fit.to_json()))
    assert judge.grade(SEA[0]) == fit.held[SEA[0]]  # the out-of-fold verdict, not the full fit
    assert all(judge(t) for t in SEA) and not any(judge(t) for t in PLAIN)
    assert judge("moon sea light night sea moon") and not judge("the cat sat on the hat")


def test_judge_never_loads_the_model_for_answers_it_was_fitted_on(tiny):
    model, tok = tiny
    fit = fit_judge(model, tok, PLAIN, SEA, feature_layer(model.config.num_hidden_layers))

    def no_model():
        raise AssertionError("the model was asked for")

    judge = LearnedJudge(no_model, tok, fit)
    assert [judge(t) for t in PLAIN + SEA] == [False] * len(PLAIN) + [True] * len(SEA)


def test_a_weak_judge_says_so():
    strong = JudgeTrust(cv_auc=0.93, followed=0.9, unchanged=0.95, n_questions=48, layer=15)
    weak = strong.model_copy(update={"cv_auc": WEAK_AUC - 0.01})
    assert "out-of-fold AUC 0.93" in strong.sentence() and "Warning" not in strong.sentence()
    assert weak.weak and "Warning: a weak judge" in weak.sentence()
