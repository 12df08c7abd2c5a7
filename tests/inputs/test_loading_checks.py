"""Checks on what a run loads: the device string, damaged weights, a config asking for code."""

from __future__ import annotations

import json

import pytest
import torch

from gcm_edit.errors import GcmEditError
from gcm_edit.inputs.loading import load_config, load_model, parse_device, resolve_model


def test_parse_device_accepts_what_this_machine_has():
    assert parse_device("cpu") == "cpu"
    assert parse_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("bogus", "is not a device"),
        ("", "is not a device"),
        ("CPU", "is not a device"),
        ("meta", "runs on cpu, cuda or mps"),
        ("cuda:99", "this machine has"),
        ("cpu:1", "this machine has 1 cpu device"),
    ],
)
def test_parse_device_refuses_in_one_line(text, message):
    with pytest.raises(GcmEditError, match=message) as error:
        parse_device(text)
    assert "\n" not in str(error.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_refused():
    with pytest.raises(GcmEditError, match="--accelerator cuda: this machine has 0 cuda devices"):
        parse_device("cuda")


@pytest.mark.parametrize(
    "damage", [lambda data: data[: len(data) // 2], lambda data: b"\x00" * 64, lambda data: b""]
)
def test_damaged_weights_name_the_file(tiny_model_dir, damage):
    weights = tiny_model_dir / "model.safetensors"
    weights.write_bytes(damage(weights.read_bytes()))
    with pytest.raises(GcmEditError, match=f"unreadable weights in {weights}"):
        load_model(resolve_model(str(tiny_model_dir)))


def test_config_with_own_code_warns_once(tiny_model_dir, capsys):
    """auto_map without --trust-remote-code: the plain architecture, and one warning line."""
    path = tiny_model_dir / "config.json"
    config = json.loads(path.read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_tiny.TinyForCausalLM"}
    path.write_text(json.dumps(config))
    ref = resolve_model(str(tiny_model_dir))
    assert type(load_config(ref)).__name__ == "LlamaConfig"
    load_config(ref)  # a second run of the same command loads it again: no second warning
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("warning:") and "auto_map" in lines[0] and "llama" in lines[0]
