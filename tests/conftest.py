"""Shared fixtures over the builders in tiny.py (tiny Llamas, the tiny tokenizer, a saved folder).

Test modules import plain helpers from `tiny`, never from conftest: with no __init__.py files,
pytest loads every conftest.py under the module name "conftest", so the name is ambiguous.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from tiny import VARIANTS, make_llama, make_tokenizer, save_tiny_model_dir


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch) -> Path:
    """Every test gets its own GCM_EDIT_CACHE, so no test reads or writes the user's cache."""
    root = tmp_path_factory.mktemp("gcm-cache")
    monkeypatch.setenv("GCM_EDIT_CACHE", str(root))
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")
    return root


@pytest.fixture
def llama_factory():
    """Call with a variant name (see VARIANTS), seed and dtype to get a tiny Llama."""
    return make_llama


@pytest.fixture(params=sorted(VARIANTS))
def variant(request) -> str:
    return request.param


@pytest.fixture(scope="session")
def tiny_tokenizer():
    return make_tokenizer()


@pytest.fixture
def tiny_model_dir(tmp_path) -> Path:
    """A local HF folder (model + tokenizer) usable as `--model`."""
    return save_tiny_model_dir(tmp_path / "tiny-llama")


@pytest.fixture(scope="session")
def integration_cache(tmp_path_factory) -> Path:
    """Where the integration tests keep the converted default model: GCM_EDIT_TEST_CACHE if
    set (reused across sessions), else one temporary folder per test session."""
    if configured := os.environ.get("GCM_EDIT_TEST_CACHE"):
        return Path(configured)
    return tmp_path_factory.mktemp("integration-cache")


@pytest.fixture
def all_threads():
    """tiny.py pins one thread for the tiny models; a real model wants every core."""
    before = torch.get_num_threads()
    torch.set_num_threads(os.cpu_count() or 1)
    yield
    torch.set_num_threads(before)
