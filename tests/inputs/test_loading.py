"""Model resolution and loading: clear errors, and cache keys that follow the weights."""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest
from safetensors.torch import load_file, save_file
from tiny import make_llama, make_tokenizer, write_tiny_gguf

from gcm_edit.errors import GcmEditError
from gcm_edit.inputs import loading
from gcm_edit.inputs.loading import load_config, load_model, load_tokenizer, resolve_model


def test_resolve_local_folder(tiny_model_dir):
    ref = resolve_model(str(tiny_model_dir))
    assert ref.source == str(tiny_model_dir.resolve())
    assert ref.slug == "tiny-llama"


@pytest.mark.parametrize("name", ["/nonexistent/path", "./missing", "~/no/such/model", "a/b/c"])
def test_resolve_missing_folder(name):
    """Paths that do not exist fail at once instead of being sent to the hub."""
    with pytest.raises(GcmEditError, match="model folder not found"):
        resolve_model(name)


def test_resolve_hub_id_passes_through():
    ref = resolve_model("HuggingFaceTB/SmolLM2-135M-Instruct")
    assert ref.source == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert ref.slug == "SmolLM2-135M-Instruct"


def test_load_model_and_config(tiny_model_dir):
    """Loaded in eval mode, fp32, frozen."""
    ref = resolve_model(str(tiny_model_dir))
    assert load_config(ref).model_type == "llama"
    model = load_model(ref)
    assert not model.training
    assert all(not p.requires_grad for p in model.parameters())


def test_fingerprint_follows_config(tiny_model_dir):
    """Editing config.json changes the cache key."""
    ref = resolve_model(str(tiny_model_dir))
    before = ref.fingerprint()
    config_path = tiny_model_dir / "config.json"
    config = json.loads(config_path.read_text())
    config["rms_norm_eps"] = 1e-5 if config["rms_norm_eps"] != 1e-5 else 1e-6
    config_path.write_text(json.dumps(config))
    assert ref.fingerprint() != before


def test_fingerprint_follows_weights(tiny_model_dir):
    """New weights saved into the same folder must change the cache key.

    Otherwise a warm run reuses the pairs, δ and scores of the *previous* weights (cached
    under runs/<slug>-<fingerprint>/) and bakes them into the new model.
    """
    ref = resolve_model(str(tiny_model_dir))
    before = ref.fingerprint()
    make_llama("gqa_head_dim16", seed=123).save_pretrained(tiny_model_dir)
    assert ref.fingerprint() != before


def _triple_an_o_proj_in_place(folder) -> None:
    """Weights changed in place: same file, same size, its mtime put back (os.utime)."""
    path = folder / "model.safetensors"
    stat = path.stat()
    weights = load_file(str(path))
    name = next(n for n in sorted(weights) if n.endswith("o_proj.weight"))
    weights[name] *= 3
    save_file(weights, str(path), metadata={"format": "pt"})
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (stat.st_size, stat.st_mtime_ns)


@pytest.mark.parametrize("memoised", [False, True])
def test_fingerprint_follows_weight_contents_not_mtime(tiny_model_dir, monkeypatch, memoised):
    """A size- and mtime-preserving rewrite is a new model: its cached stages are not reused.
    Also when the earlier hash was memoised (RACY_NS -1: every hash is kept): ctime moves."""
    monkeypatch.setattr(loading, "RACY_NS", -1 if memoised else loading.RACY_NS)
    ref = resolve_model(str(tiny_model_dir))
    before = ref.fingerprint()
    time.sleep(0.05)  # past a coarse ctime clock's tick
    _triple_an_o_proj_in_place(tiny_model_dir)
    assert ref.fingerprint() != before


def test_fingerprint_ignores_where_the_folder_is(tiny_model_dir, tmp_path):
    """A copied or moved model (its cache with it) keeps its fingerprint: no path in it."""
    before = resolve_model(str(tiny_model_dir)).fingerprint()
    copy = shutil.copytree(tiny_model_dir, tmp_path / "elsewhere" / "tiny-llama")
    assert resolve_model(str(copy)).fingerprint() == before
    moved = shutil.move(str(copy), tmp_path / "moved")
    assert resolve_model(str(moved)).fingerprint() == before


def test_fingerprint_follows_the_chat_template(tiny_model_dir):
    """The chat template changes every prompt, so every answer: it is in the key."""
    ref = resolve_model(str(tiny_model_dir))
    before = ref.fingerprint()
    template = tiny_model_dir / "chat_template.jinja"
    template.write_text(template.read_text().replace("assistant", "model"))
    assert ref.fingerprint() != before


def test_fingerprint_hashes_each_file_once_per_process(tiny_model_dir, monkeypatch):
    """Asked for many times per run, the weights are read once (while their stat holds)."""
    hashed = []
    monkeypatch.setattr(loading, "RACY_NS", -1)
    monkeypatch.setattr(loading, "_hashed", {})
    monkeypatch.setattr(loading, "sha256_file", lambda path: hashed.append(path.name) or "0")
    ref = resolve_model(str(tiny_model_dir))
    assert (
        ref.fingerprint() == ref.fingerprint() == resolve_model(str(tiny_model_dir)).fingerprint()
    )
    assert sorted(hashed) == sorted(set(hashed)) and "model.safetensors" in hashed


def test_hub_fingerprint_follows_the_downloaded_revision(monkeypatch):
    """A hub id names its weights by the snapshot commit fetched, not by the id alone."""
    import huggingface_hub

    ref = resolve_model("org/model")
    fingerprints = []
    for found in (None, "/hub/models--org--model/snapshots/abc/config.json", "/x/def/config.json"):
        monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", lambda *_a, f=found: f)
        fingerprints.append(ref.fingerprint())
    assert len(set(fingerprints)) == 3


def test_tokenizer_pad_defaults_to_eos(tmp_path):
    """Batching needs a pad token: without one, eos is used."""
    folder = tmp_path / "no-pad"
    tokenizer = make_tokenizer()
    tokenizer.pad_token = None
    tokenizer.save_pretrained(folder)
    make_llama("gqa", seed=0).save_pretrained(folder)
    loaded = load_tokenizer(resolve_model(str(folder)))
    assert loaded.pad_token_id == loaded.eos_token_id == 3


def test_model_files_other_than_gguf_are_refused(tmp_path):
    weights = tmp_path / "model.bin"
    weights.write_bytes(b"\x80\x04pickle")
    with pytest.raises(GcmEditError, match="is a file: pass a Hugging Face model folder or a"):
        resolve_model(str(weights))
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"not a gguf at all")
    with pytest.raises(GcmEditError, match="is not a GGUF file"):
        resolve_model(str(fake))


def test_unreadable_gguf_is_one_line_and_leaves_no_folder(tmp_path, isolated_cache):
    """A GGUF header with nothing transformers can map: one line, nothing half-written."""
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\x00" * 16)
    with pytest.raises(GcmEditError, match=r"^transformers cannot read .*broken\.gguf") as info:
        resolve_model(str(broken))
    assert "\n" not in str(info.value)
    models = isolated_cache / "models"
    assert not models.exists() or not any(models.iterdir())


def test_gguf_of_an_unsupported_family_is_refused_before_conversion(tmp_path, isolated_cache):
    """The GGUF's architecture is checked against the table from its metadata alone."""
    path = write_tiny_gguf(tmp_path / "tiny-gpt2.gguf", "gpt2")
    with pytest.raises(GcmEditError, match="architecture 'gpt2' is not supported"):
        resolve_model(str(path))
    models = isolated_cache / "models"
    assert not models.exists() or not any(models.iterdir())


def test_gguf_without_tokenizer_metadata_is_one_line(tmp_path, isolated_cache):
    """A llama GGUF whose writer left out the tokenizer: a bad input (exit 2), not a crash."""
    path = write_tiny_gguf(tmp_path / "no-tokenizer.gguf", "llama")
    with pytest.raises(GcmEditError, match="no-tokenizer.gguf carries no tokenizer") as info:
        resolve_model(str(path))
    assert "\n" not in str(info.value)
    models = isolated_cache / "models"
    assert not models.exists() or not any(models.iterdir())


def test_folder_with_only_a_config_is_one_line(tmp_path, tiny_model_dir):
    """config.json alone: the tokenizer is missing, said in one line naming the folder."""
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "config.json").write_text((tiny_model_dir / "config.json").read_text())
    ref = resolve_model(str(bare))
    with pytest.raises(GcmEditError, match="has no usable tokenizer") as info:
        load_tokenizer(ref)
    assert str(bare) in str(info.value) and "\n" not in str(info.value)


def test_hub_ids_come_from_what_the_inputs_say(tmp_path, tiny_model_dir):
    """A hub id as given; a folder's `_name_or_path` when it is one; a GGUF's source repo."""
    from gcm_edit.inputs.loading import _folder_hub_id, _gguf_hub_id

    assert resolve_model("org/model").hub_id == "org/model"
    assert resolve_model(str(tiny_model_dir)).hub_id is None
    config = json.loads((tiny_model_dir / "config.json").read_text())
    for named, expected in (("org/model", "org/model"), (str(tiny_model_dir), None)):
        (tiny_model_dir / "config.json").write_text(json.dumps({**config, "_name_or_path": named}))
        assert _folder_hub_id(tiny_model_dir) == expected
    for url, expected in (
        ("https://huggingface.co/google/gemma-3-270m", "google/gemma-3-270m"),
        ("https://example.com/weights", None),
    ):
        path = write_tiny_gguf(tmp_path / "m.gguf", "llama", general__source__repo_url=url)
        assert _gguf_hub_id(path) == expected
