"""Gated neurons against an independent reference: a model built with a wider MLP from its
config, the neurons' rows and columns written in by hand. The hook, the baked copy and the
reference give the same logits; the unedited model and the other layers stay as they were."""

from __future__ import annotations

import pytest
import torch
from tiny import FAMILIES, family_model, random_plan, random_token_ids

from gcm_edit.checkpoint.bake import bake
from gcm_edit.errors import GcmEditError
from gcm_edit.model.heads import HeadGeometry
from gcm_edit.steering.neurons import GatedNeurons
from gcm_edit.steering.plan import SteeringPlan

LAYER, COUNT = 1, 3


def _neurons(hidden: int, layer: int = LAYER, count: int = COUNT, seed: int = 0) -> GatedNeurons:
    g = torch.Generator().manual_seed(seed)
    return GatedNeurons(
        layer,
        torch.randn(count, hidden, generator=g),
        torch.randn(count, hidden, generator=g),
        torch.randn(hidden, count, generator=g),
    )


def _neuron_plan(model, neurons: tuple[GatedNeurons, ...], heads: bool = True) -> SteeringPlan:
    plan = random_plan(HeadGeometry.of(model.config))
    if not heads:
        plan = SteeringPlan(plan.geometry, [], plan.vectors[:0], 1.0, [])
    return SteeringPlan(
        plan.geometry, plan.heads, plan.vectors, plan.alpha, plan.scales, neurons=neurons
    )


def _wider_reference(model, neurons: GatedNeurons):
    """The same model built with intermediate_size + m, weights copied in by name: the
    neurons' rows of gate and up and columns of down at their layer, zeros elsewhere."""
    config = type(model.config).from_dict(model.config.to_dict())
    config.intermediate_size += neurons.count
    wide = type(model)(config).eval()
    state = model.state_dict()
    at = f"layers.{neurons.layer}."
    for name, tensor in wide.state_dict().items():
        old = state[name]
        if tensor.shape != old.shape:  # a grown MLP projection
            extra = torch.zeros_like(tensor)
            extra[tuple(slice(0, n) for n in old.shape)] = old
            if at in name and "gate_proj" in name:
                extra[old.shape[0] :] = neurons.gate
            elif at in name and "up_proj" in name:
                extra[old.shape[0] :] = neurons.up
            elif at in name and "down_proj" in name:
                extra[:, old.shape[1] :] = neurons.down
            old = extra
        tensor.copy_(old)
    return wide


@pytest.mark.parametrize("model_type", ["llama", "gemma3_text", "qwen2"])
def test_neurons_are_a_wider_mlp(model_type):
    """qwen2 additionally llamafies (its o_proj has no bias): neurons grow the Llama copy."""
    model = family_model(model_type, 2, seed=1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    neurons = _neurons(model.config.hidden_size)
    ids = torch.tensor([random_token_ids(torch.Generator().manual_seed(3), 12)])
    with torch.no_grad():
        reference = _wider_reference(model, neurons)(ids).logits
        plan = _neuron_plan(model, (neurons,), heads=False)
        with plan.apply(model):
            hooked = model(ids).logits
        baked_model = bake(model, plan)
        baked = baked_model(ids).logits
        base = model(ids).logits
    torch.testing.assert_close(hooked, reference, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(baked, reference, rtol=1e-5, atol=1e-5)
    assert (hooked - base).abs().max() > 1e-3  # the neurons do change the model
    assert baked_model.config.intermediate_size == model.config.intermediate_size + COUNT
    for key, value in model.state_dict().items():  # the unedited model is untouched
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)
    # with heads too: hook and bake agree (the llamafy path for qwen2)
    both = _neuron_plan(model, (neurons,))
    with torch.no_grad(), both.apply(model):
        hooked = model(ids).logits
    torch.testing.assert_close(bake(model, both)(ids).logits, hooked, rtol=1e-5, atol=1e-5)


def test_layers_grow_to_the_widest_and_stay_exact():
    """Neurons on two layers (5 and 2): every MLP grows by 5; the layer with 2 pads 3 zeros."""
    model = family_model("llama", 2, seed=2)
    hidden = model.config.hidden_size
    neurons = (_neurons(hidden, 0, 5, seed=1), _neurons(hidden, 2, 2, seed=2))
    plan = _neuron_plan(model, neurons)
    ids = torch.tensor([random_token_ids(torch.Generator().manual_seed(4), 10)])
    with torch.no_grad():
        with plan.apply(model):
            hooked = model(ids).logits
        baked = bake(model, plan)
        torch.testing.assert_close(baked(ids).logits, hooked, rtol=1e-5, atol=1e-5)
    assert baked.config.intermediate_size == model.config.intermediate_size + 5
    layer1 = baked.model.layers[1].mlp
    size = model.config.intermediate_size
    assert not layer1.up_proj.weight[size:].any() and not layer1.down_proj.weight[:, size:].any()
    torch.testing.assert_close(
        layer1.up_proj.weight[:size], model.model.layers[1].mlp.up_proj.weight
    )


def test_plan_with_neurons_saves_doses_and_fingerprints(tmp_path):
    model = family_model("llama", 2, seed=1)
    neurons = _neurons(model.config.hidden_size)
    plan = _neuron_plan(model, (neurons,))
    plan.save(tmp_path)
    loaded = SteeringPlan.load(tmp_path)
    assert loaded.fingerprint() == plan.fingerprint()
    assert plan.fingerprint() != _neuron_plan(model, ()).fingerprint()
    ids = torch.tensor([random_token_ids(torch.Generator().manual_seed(5), 8)])
    with torch.no_grad():
        base = model(ids).logits
        with loaded.apply(model):
            again = model(ids).logits
        with plan.apply(model):
            hooked = model(ids).logits
        with plan.dosed(0.0).apply(model):
            none = model(ids).logits
    torch.testing.assert_close(again, hooked, rtol=0, atol=0)
    torch.testing.assert_close(none, base, rtol=1e-6, atol=1e-6)
    with pytest.raises(GcmEditError, match="NaN"):
        broken = GatedNeurons(LAYER, neurons.gate, neurons.up, neurons.down * float("nan"))
        _neuron_plan(model, (broken,))


def test_fused_gate_up_is_refused_in_one_line():
    assert "phi3" in FAMILIES
    model = family_model("phi3", 2)
    plan = _neuron_plan(model, (_neurons(model.config.hidden_size),), heads=False)
    with pytest.raises(GcmEditError, match="fuses its MLP's gate and up"), plan.apply(model):
        pass
