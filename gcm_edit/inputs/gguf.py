"""GGUF files as models: dequantized once into a safetensors HF folder in the cache.

transformers reads a GGUF (`gguf_file=`) into fp32 but refuses to `save_pretrained` a
GGUF-loaded model, so the model is rebuilt from its config (without `quantization_config`),
given the loaded state dict, and saved with its tokenizer. The folder is named after the
file's sha256, so a changed file is a new model and the run caches keyed on it stay honest.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from gcm_edit.cache import cache_root, sha256_file
from gcm_edit.errors import GcmEditError
from gcm_edit.model.architectures import arch_spec


def gguf_file(path: Path, what: str = "") -> Path:
    """`path`, checked to be a GGUF file by its header; `what` names the option it came from."""
    named = f"{what} {path}" if what else str(path)
    if not path.is_file():
        raise GcmEditError(f"{named} does not exist: give the path of a .gguf file")
    with path.open("rb") as handle:
        if handle.read(4) != b"GGUF":
            raise GcmEditError(f"{named} is not a GGUF file (no GGUF header)")
    return path


def gguf_model_dir(path: Path) -> Path:
    """The converted folder of a user's GGUF file, converting on first use."""
    gguf_file(path)
    target = cache_root() / "models" / f"{path.stem}-{sha256_file(path)[:16]}"
    return convert_gguf(path, target)


def convert_gguf(path: Path, target: Path) -> Path:
    """Dequantize `path` into the HF folder `target` (atomically), unless it is there."""
    if (target / "config.json").is_file():
        return target
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from gcm_edit.console import console

    folder, name = path.parent, path.name
    try:
        config = AutoConfig.from_pretrained(folder, gguf_file=name)
    except Exception as exc:  # transformers raises many types for GGUFs it cannot map
        raise GcmEditError(
            f"transformers cannot read {path} ({type(exc).__name__}: {exc})".splitlines()[0]
        ) from exc
    arch_spec(config)  # an unsupported family fails before minutes of conversion
    console.print(f"converting {name} to safetensors (once) -> {target}")
    with console.status(f"dequantizing {name} (tokenizers with large vocabularies take minutes)"):
        try:
            tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        except Exception as exc:  # a GGUF without (or with broken) tokenizer metadata
            raise GcmEditError(
                f"{path} carries no tokenizer transformers can read ({type(exc).__name__}); "
                "convert the model with its tokenizer (llama.cpp's convert_hf_to_gguf.py)"
            ) from exc
        try:
            loaded = AutoModelForCausalLM.from_pretrained(
                folder, gguf_file=name, dtype=torch.float32
            )
        except Exception as exc:  # missing or mis-shaped tensors
            raise GcmEditError(
                f"transformers cannot load the weights of {path} ({type(exc).__name__}: "
                f"{exc})".splitlines()[0]
            ) from exc
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.name_or_path = target.name
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    if tokenizer.eos_token_id is not None:
        model.generation_config.eos_token_id = tokenizer.eos_token_id
        model.generation_config.pad_token_id = tokenizer.eos_token_id
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        tmp.chmod(0o755)
        tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
