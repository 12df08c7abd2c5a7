"""Distilled edits on tiny random models: the chunked loss equals the full-vocabulary
reference, what is trained is what is baked, and training moves the student to the teacher."""

from __future__ import annotations

import pytest
import torch
from tiny import random_token_ids

from gcm_edit.checkpoint.bake import bake
from gcm_edit.model.batches import TokenBatch
from gcm_edit.model.heads import HeadGeometry
from gcm_edit.model.logits import distillation_loss, predicting_states
from gcm_edit.pairs.teacher import TeacherExample
from gcm_edit.steering.constraint import NeutralKL, base_continuations
from gcm_edit.steering.distill import EditLearner, learn_edit
from gcm_edit.steering.learned_edit import EditObjective, LearnedEdit

HEADS = [(0, 1), (1, 3), (2, 0), (2, 2)]


def _objective(**changes) -> EditObjective:
    values = dict(
        rank=2,
        lr=0.05,
        steps=30,
        kl_target=10.0,
        lambda_f=0.01,
        seed=0,
        snapshot_every=10,
        neutral_prompts=3,
    )
    return EditObjective(**{**values, **changes})


def _examples(n: int, seed: int = 0, forced: int = 0) -> list[TeacherExample]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        prompt = random_token_ids(g, 3 + i % 3)
        response = random_token_ids(g, 4 + i % 4)
        teacher = prompt + random_token_ids(g, 2)  # the directive: more tokens in context
        out.append(TeacherExample(f"q{i}", prompt, teacher, response, forced, "", 0))
    return out


def test_chunked_loss_equals_full_vocabulary_reference(llama_factory):
    """KL(teacher ‖ student) on free rows, −log p(token) on forced rows, in chunks of 3,
    equals the whole-vocabulary computation, value and gradient."""
    model = llama_factory("gqa_head_dim16", seed=1)
    g = torch.Generator().manual_seed(2)
    teacher = torch.randn(10, 48, generator=g)
    student = torch.randn(10, 48, generator=g, requires_grad=True)
    forced = torch.tensor([True, True] + [False] * 8)
    tokens = torch.randint(4, 64, (10,), generator=g)

    loss = distillation_loss(model, teacher, student, forced, tokens, chunk=3)
    (grad,) = torch.autograd.grad(loss, student)

    ref_student = student.detach().clone().requires_grad_(True)
    t = torch.log_softmax(model.lm_head(teacher).detach(), -1)
    s = torch.log_softmax(model.lm_head(ref_student), -1)
    kl = (t.exp() * (t - s)).sum(-1)
    nll = -s.gather(-1, tokens[:, None]).squeeze(-1)
    reference = torch.where(forced, nll, kl).sum()
    (ref_grad,) = torch.autograd.grad(reference, ref_student)
    torch.testing.assert_close(loss, reference)
    torch.testing.assert_close(grad, ref_grad)


def test_states_line_up_across_prompts(llama_factory):
    """The same answer after two different prompts gives one state per response token, in
    the same order; with the same prompt the student is the teacher (KL 0)."""
    model = llama_factory("gqa_head_dim16", seed=1)
    examples = _examples(3)
    student = TokenBatch.build(
        [e.student_prompt for e in examples], [e.response for e in examples], 1
    )
    teacher = TokenBatch.build(
        [e.teacher_prompt for e in examples], [e.response for e in examples], 1
    )
    with torch.no_grad():
        s, t = predicting_states(model, student), predicting_states(model, teacher)
    assert s.shape == t.shape == (sum(len(e.response) for e in examples), 48)
    tokens = torch.cat([torch.tensor(e.response) for e in examples])
    none = torch.zeros(len(tokens), dtype=torch.bool)
    with torch.no_grad():
        assert float(distillation_loss(model, s, s, none, tokens)) < 1e-5
        assert float(distillation_loss(model, t, s, none, tokens)) > 1e-3


@pytest.mark.parametrize("neurons", [0, 3])
def test_what_is_trained_is_what_is_baked(neurons, llama_factory, tiny_tokenizer):
    """The learner's hook, the plan built from its snapshot, and the baked weights give the
    same logits: b additive, A_h = W Rᵀ as rank-1 parts, gated neurons as a wider MLP."""
    model = llama_factory("gqa_head_dim16", seed=4)
    neutral = NeutralKL(tiny_tokenizer, 1.0, 1.0)
    goal = _objective(neurons=neurons, neuron_layer=1)
    learner = EditLearner(model, HEADS, torch.randn(4, 16), torch.full((4,), 2.0), neutral, goal)
    with torch.no_grad():
        learner.w.normal_(generator=torch.Generator().manual_seed(3))
        learner.down.normal_(generator=torch.Generator().manual_seed(4))
    learner.snapshot(7)
    edit = LearnedEdit(HEADS, [], learner.snapshots)
    plan = edit.plan(learner.geometry, 7)
    assert plan.steered_heads == sorted(HEADS) and len(plan.rank1_heads) == 8
    assert [(n.layer, n.count) for n in plan.neurons] == ([(1, neurons)] if neurons else [])

    ids = torch.tensor([random_token_ids(torch.Generator().manual_seed(5), 9)])
    with torch.no_grad():
        with learner.edit():
            trained = model(ids).logits
        with plan.apply(model):
            hooked = model(ids).logits
        baked = bake(model, plan)(ids).logits
        base = model(ids).logits
    torch.testing.assert_close(hooked, trained)
    torch.testing.assert_close(baked, trained, atol=1e-5, rtol=1e-5)
    assert (trained - base).abs().max() > 1e-3


def test_learning_moves_the_student_to_the_teacher(llama_factory, tiny_tokenizer):
    model = llama_factory("gqa_head_dim16", seed=6)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    examples = _examples(8, seed=1, forced=1)
    result = learn_edit(
        model,
        tiny_tokenizer,
        examples,
        HEADS,
        torch.zeros(4, 16),
        torch.ones(4),
        _objective(lr=0.2),
        batch_size=4,
    )
    assert len(result.history) == 30
    assert [s["step"] for s in result.snapshots] == [0, 10, 20, 30]
    first = sum(r["distill_kl"] for r in result.history[:4])
    last = sum(r["distill_kl"] for r in result.history[-4:])
    assert last < 0.8 * first
    step0 = result.plan(HeadGeometry.of(model.config), 0)
    assert step0.rank1_heads == [] and not step0.vectors.any()  # W starts at 0, b at init
    for key, value in model.state_dict().items():  # the model itself is never trained
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)


def test_on_policy_steps_go_on_from_the_first_phase(llama_factory, tiny_tokenizer):
    """The student's own answers, scored by the teacher, for more steps: one history, the
    snapshots numbered on, the first phase exactly as without it."""
    from gcm_edit.model.generation import Decoding

    model = llama_factory("gqa_head_dim16", seed=6)
    examples = _examples(6, seed=2)
    args = (model, tiny_tokenizer, examples, HEADS, torch.zeros(4, 16), torch.ones(4))
    goal = _objective(steps=10, snapshot_every=5)
    alone = learn_edit(*args, goal, batch_size=3)
    both = learn_edit(*args, goal, batch_size=3, on_policy=(4, Decoding(max_new_tokens=5), 3))
    assert [s["step"] for s in both.snapshots] == [0, 5, 10, 14]
    assert len(both.history) == 14
    assert both.history[:10] == alone.history and both.snapshots[:3] == alone.snapshots


def test_continuations_enter_the_constraint(llama_factory, tiny_tokenizer):
    """With `neutral_continuations`, a step's KL is the constraint's KL over prompt ⊕ the base
    model's own continuation for the prompts that step draws; without them, prompts alone."""
    model = llama_factory("gqa_head_dim16", seed=6)
    continuations = base_continuations(model, tiny_tokenizer)
    init = torch.randn(4, 16, generator=torch.Generator().manual_seed(8))
    args = (model, tiny_tokenizer, _examples(4, seed=2), HEADS, init, torch.ones(4))
    goal = _objective(steps=1, snapshot_every=1, neutral_continuations=True)
    with pytest.raises(ValueError, match="continuations"):
        learn_edit(*args, goal, batch_size=4)
    held = learn_edit(*args, goal, batch_size=4, continuations=continuations)
    plan = held.plan(HeadGeometry.of(model.config), 0)  # the edit the first step ran
    rows = NeutralKL(tiny_tokenizer, 1.0, 1.0).sample(3, torch.Generator().manual_seed(1))
    measured = {}
    for name, given in (("with", continuations), ("without", None)):
        neutral = NeutralKL(tiny_tokenizer, 1.0, 1.0, given)
        neutral.start(model, torch.device("cpu"))
        with torch.no_grad(), plan.apply(model):
            measured[name] = float(neutral.kl(model, torch.device("cpu"), rows))
    assert held.history[0]["kl"] == pytest.approx(measured["with"], rel=1e-4)
    assert abs(measured["with"] - measured["without"]) > 1e-4 * measured["with"]


def test_gated_neurons_learn_alone(llama_factory, tiny_tokenizer):
    """Vectors and neurons, no maps: the neurons start silent (step 0 is the start plan) and
    training moves the student to the teacher through them too."""
    model = llama_factory("gqa_head_dim16", seed=6)
    goal = _objective(rank=0, lr=0.2, neurons=4, neuron_layer=2)
    args = (model, tiny_tokenizer, _examples(8, seed=1, forced=1), HEADS)
    result = learn_edit(*args, torch.zeros(4, 16), torch.ones(4), goal, batch_size=4)
    geometry = HeadGeometry.of(model.config)
    assert result.plan(geometry, 0).neurons == ()
    last = result.plan(geometry, 30)
    assert [(n.layer, n.count) for n in last.neurons] == [(2, 4)]
    first = sum(r["distill_kl"] for r in result.history[:4])
    assert sum(r["distill_kl"] for r in result.history[-4:]) < 0.8 * first


def test_self_training_learns_the_students_kept_answers(llama_factory, tiny_tokenizer):
    """After the first phase, the edited student answers; the judges keep; the kept answers
    (one-hot) and the teacher's train on. The first phase is exactly as without it."""
    from gcm_edit.model.generation import Decoding
    from gcm_edit.steering.distill import SelfTraining

    model = llama_factory("gqa_head_dim16", seed=6)
    examples = _examples(6, seed=2)
    args = (model, tiny_tokenizer, examples, HEADS, torch.zeros(4, 16), torch.ones(4))
    goal = _objective(steps=10, snapshot_every=5)
    judged: list[list[str]] = []

    def keep(asked: list[str], texts: list[str]) -> list[bool]:
        judged.append(asked)
        return [i % 2 == 0 for i in range(len(texts))]  # every other question, every round

    questions = [e.question for e in examples] + ["one more?"]
    own = SelfTraining(4, questions, Decoding(max_new_tokens=5), 2, 3, keep)
    alone = learn_edit(*args, goal, batch_size=3)
    both = learn_edit(*args, goal, batch_size=3, self_training=own)
    assert both.history[:10] == alone.history and both.snapshots[:3] == alone.snapshots
    assert [s["step"] for s in both.snapshots] == [0, 5, 10, 14] and len(both.history) == 14
    assert judged[0] == questions and len(judged[1]) == 3  # the rest get a second try
    assert both.self_kept == 4 + 2  # round 1 keeps 4 of 7, round 2 keeps 2 of the other 3
