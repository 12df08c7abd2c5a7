"""`gcm-edit verify DIR`: rebuilds the hooked model from the base + plan and checks the folder."""

from __future__ import annotations

import json

import torch
from safetensors.torch import load_file, save_file
from tiny import make_llama, make_tokenizer
from typer.testing import CliRunner

from gcm_edit.checkpoint.bake import bake
from gcm_edit.cli.app import app
from gcm_edit.model.heads import HeadGeometry
from gcm_edit.steering.plan import SteeringPlan


def make_export(tmp_path):
    base_dir, folder = tmp_path / "base", tmp_path / "export"
    model = make_llama("gqa_head_dim16", seed=0)
    model.save_pretrained(base_dir)
    make_tokenizer().save_pretrained(base_dir)
    geometry = HeadGeometry.of(model.config)
    g = torch.Generator().manual_seed(3)
    plan = SteeringPlan(
        geometry, [(0, 1), (2, 3)], torch.randn(2, geometry.head_dim, generator=g), 2.0, [1.0, 1.0]
    )
    bake(model, plan).save_pretrained(folder)
    make_tokenizer().save_pretrained(folder)
    plan.save(folder)
    manifest = {
        "base_model": {"name": "tiny", "source": str(base_dir)},
        "samples": [{"question": "Why is the sky blue ?"}, {"question": "How do plants grow ?"}],
    }
    (folder / "gcm_edit.json").write_text(json.dumps(manifest))
    return folder


def test_verify_accepts_a_true_export(tmp_path):
    result = CliRunner().invoke(app, ["verify", str(make_export(tmp_path))])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok: max |Δlogit|")


def test_verify_rejects_a_tampered_export(tmp_path):
    folder = make_export(tmp_path)
    weights = load_file(str(folder / "model.safetensors"))
    weights["model.layers.1.self_attn.o_proj.bias"] += 0.5
    save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})
    result = CliRunner().invoke(app, ["verify", str(folder)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: verification failed")


def test_verify_needs_a_gcm_edit_folder(tmp_path):
    result = CliRunner().invoke(app, ["verify", str(tmp_path)])
    assert result.exit_code == 2
    assert "not a gcm-edit export (no gcm_edit.json)" in result.output
