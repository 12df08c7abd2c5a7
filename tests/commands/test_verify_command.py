"""`gcm-edit verify DIR`: rebuilds the hooked model from the base + plan and checks the folder."""

from __future__ import annotations

import json
import shutil

from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from gcm_edit.cli.app import app


def copy_of_export(exported, tmp_path):
    """A private copy of the shared tiny export (its base model folder is still in place)."""
    out, _ = exported
    return shutil.copytree(out, tmp_path / "export")


def test_verify_accepts_a_true_export(exported, tmp_path):
    result = CliRunner().invoke(app, ["verify", str(copy_of_export(exported, tmp_path))])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok: max |Δlogit|")


def test_verify_rejects_a_tampered_export(exported, tmp_path):
    folder = copy_of_export(exported, tmp_path)
    weights = load_file(str(folder / "model.safetensors"))
    weights["model.layers.1.self_attn.o_proj.bias"] += 0.5
    save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})
    result = CliRunner().invoke(app, ["verify", str(folder)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: verification failed")


def test_verify_rejects_a_manifest_recording_other_weights(exported, tmp_path):
    """gcm_edit.json's sha256 of a weight file is checked: a wrong one fails, naming it."""
    folder = copy_of_export(exported, tmp_path)
    manifest = json.loads((folder / "gcm_edit.json").read_text())
    assert "model.safetensors" in manifest["files"]
    manifest["files"]["model.safetensors"] = "0" * 64
    (folder / "gcm_edit.json").write_text(json.dumps(manifest))
    result = CliRunner().invoke(app, ["verify", str(folder)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: verification failed")
    assert "model.safetensors does not match its sha256 in gcm_edit.json" in lines[0]


def test_verify_needs_a_gcm_edit_folder(tmp_path):
    result = CliRunner().invoke(app, ["verify", str(tmp_path)])
    assert result.exit_code == 2
    assert "not a gcm-edit export (no gcm_edit.json)" in result.output


def test_verify_refuses_a_manifest_that_is_not_ours(exported, tmp_path):
    folder = copy_of_export(exported, tmp_path)
    (folder / "gcm_edit.json").write_text('{"base_model": {"name": "x"}}')
    result = CliRunner().invoke(app, ["verify", str(folder)])
    assert result.exit_code == 2
    assert "is not a valid gcm-edit manifest" in result.output


def test_verify_in_llamacpp_needs_a_gguf(exported, tmp_path):
    result = CliRunner().invoke(
        app, ["verify", str(copy_of_export(exported, tmp_path)), "--runtime", "llama.cpp"]
    )
    assert result.exit_code == 2
    assert "has no model.gguf: export with --gguf TYPE" in result.output
