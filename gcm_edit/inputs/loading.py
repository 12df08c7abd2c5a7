"""Loading a base model safely: safetensors only, no remote code unless asked for."""

from __future__ import annotations

import functools
import hashlib
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from gcm_edit.cache import sha256_file
from gcm_edit.console import console
from gcm_edit.errors import GcmEditError
from gcm_edit.inputs.default_model import DEFAULT_MODEL, FOLDER_NAME, default_model_dir
from gcm_edit.inputs.default_model import HUB_ID as DEFAULT_HUB_ID
from gcm_edit.inputs.gguf import gguf_model_dir
from gcm_edit.model.architectures import arch_spec

HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")
HUB_URL = re.compile(r"https://huggingface\.co/([A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*)/?")


@dataclass(frozen=True)
class ModelRef:
    """What the user asked for (`name`), where it is loaded from (`source`) and, when known,
    its Hugging Face hub id (`hub_id`: what a model card's `base_model` must name)."""

    name: str
    source: str
    hub_id: str | None = None

    @property
    def slug(self) -> str:
        path = Path(self.name.rstrip("/"))
        return path.stem if path.suffix == ".gguf" else path.name

    def fingerprint(self) -> str:
        """Changes when what the model answers with changes (config, weights, tokenizer, chat
        template, decoding defaults), so caches keyed on it stay honest. Hashes contents, not
        the path or mtimes: weights rewritten in place are a new model, a moved or copied
        folder is the same one."""
        folder = Path(self.source)
        if not folder.is_dir():  # a hub id: named by its downloaded revision, where known
            revision = _hub_revision(self.source)
            return hashlib.sha256(f"hub:{self.source}@{revision}".encode()).hexdigest()[:16]
        digest = hashlib.sha256()
        for path in sorted(folder.iterdir()):
            if (path.name.endswith(WEIGHTS) or path.name in FINGERPRINTED) and path.is_file():
                digest.update(f"{path.name}\0{_file_sha256(path)}\n".encode())
        return digest.hexdigest()[:16]


WEIGHTS = (".safetensors", ".safetensors.index.json")  # shards and the map of their tensors
# The files besides the weights that change a model's answers: its config, decoding defaults
# (eos ids), tokenizer and chat template.
FINGERPRINTED = frozenset(
    {
        "config.json",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "added_tokens.json",
        "tokenizer.model",
        "vocab.json",
        "merges.txt",
        "chat_template.jinja",
        "chat_template.json",
    }
)
# A file changed this recently may change again within one tick of a coarse ctime clock
# (git's "racy clean" problem): its hash is not memoised.
RACY_NS = 2_000_000_000
_hashed: dict[tuple, str] = {}


def _file_sha256(path: Path) -> str:
    """sha256 of a file, hashed once per process while its stat is unchanged: the fingerprint
    is asked for many times per run, and a model's weights are gigabytes. ctime is in the
    key because no tool can set it back (os.utime restores mtime, not ctime)."""
    stat = path.stat()
    key = (str(path), stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
    if (known := _hashed.get(key)) is not None:
        return known
    started = time.time_ns()
    digest = sha256_file(path)
    if started - stat.st_ctime_ns > RACY_NS:
        _hashed[key] = digest
    return digest


def _hub_revision(repo_id: str) -> str | None:
    """The commit of a hub model's downloaded snapshot (load_config fetched its config), or
    None when nothing of it is cached locally."""
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo_id, "config.json")
    except Exception:  # not a valid repo id for the hub client: named by the id alone
        return None
    return Path(found).parent.name if isinstance(found, str) else None


def _gguf_hub_id(path: Path) -> str | None:
    """The hub repo a GGUF names as its source (`general.source.repo_url`), if any."""
    from gguf import GGUFReader

    fields = GGUFReader(str(path)).fields
    for key in ("general.source.repo_url", "general.source.huggingface.repository"):
        if key in fields:
            value = str(fields[key].contents())
            if url := HUB_URL.fullmatch(value):
                return url[1]
            if HUB_ID.fullmatch(value):
                return value
    return None


def _folder_hub_id(folder: Path) -> str | None:
    """The hub id a folder's config.json was loaded from (`_name_or_path`), if it is one."""
    try:
        named = json.loads((folder / "config.json").read_text()).get("_name_or_path", "")
    except (OSError, ValueError, AttributeError):
        return None
    looks_local = not isinstance(named, str) or Path(named).expanduser().exists()
    return None if looks_local or not HUB_ID.fullmatch(named) else named


def resolve_model(name: str) -> ModelRef:
    if name == DEFAULT_MODEL:
        return ModelRef(FOLDER_NAME, str(default_model_dir()), DEFAULT_HUB_ID)
    path = Path(name).expanduser()
    if path.is_file():
        if path.suffix != ".gguf":
            raise GcmEditError(f"{path} is a file: pass a Hugging Face model folder or a .gguf")
        source = gguf_model_dir(path.resolve())
        return ModelRef(name, str(source), _gguf_hub_id(path))
    if path.exists():
        if not (path / "config.json").is_file():
            raise GcmEditError(f"{path} is not a Hugging Face model folder (no config.json)")
        return ModelRef(name, str(path.resolve()), _folder_hub_id(path))
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise GcmEditError(f"model folder not found: {name}")
    return ModelRef(name, name, name)  # a hub id: what it was loaded by


def parse_device(text: str) -> str:
    """`--accelerator`: auto (CUDA when there is one, else the CPU) or a device this machine has,
    checked before any work, so a typo or a missing GPU is one line and not a crash mid-run."""
    if text == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(text)
    except RuntimeError:
        raise GcmEditError(
            f"--accelerator {text!r} is not a device (auto, cpu, cuda, cuda:1, mps, ...)"
        ) from None
    counts = {
        "cpu": 1,
        "cuda": torch.cuda.device_count(),
        "mps": int(torch.backends.mps.is_available()),
    }
    if device.type not in counts:
        raise GcmEditError(f"--accelerator {text}: gcm-edit runs on cpu, cuda or mps")
    n = counts[device.type]
    if (device.index or 0) >= n:
        plural = "" if n == 1 else "s"
        raise GcmEditError(
            f"--accelerator {text}: this machine has {n} {device.type} device{plural}"
        )
    return text


def _hub_error(ref: ModelRef, exc: Exception) -> GcmEditError:
    return GcmEditError(
        f"could not load {ref.name!r} ({type(exc).__name__}): pass a local HF folder with "
        "--model, or make the hub reachable"
    )


def load_config(ref: ModelRef, trust_remote_code: bool = False):
    """Load and check the config first, so an unsupported architecture fails before weights."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(ref.source, trust_remote_code=trust_remote_code)
    except ValueError as exc:
        if "trust_remote_code" in str(exc):
            raise GcmEditError(
                f"{ref.name} needs custom code; re-run with --trust-remote-code if you trust it"
            ) from exc
        raise _hub_error(ref, exc) from exc
    except OSError as exc:
        raise _hub_error(ref, exc) from exc
    arch_spec(config)
    if getattr(config, "auto_map", None) and not trust_remote_code:
        _warn_once(
            f"[yellow]warning:[/] {ref.name} ships its own model code (auto_map), which is not "
            f"run: it is loaded as the plain {config.model_type} architecture "
            "(--trust-remote-code runs its code)"
        )
    return config


@functools.cache
def _warn_once(message: str) -> None:
    """Print a warning once per process (several runs of one command load the same config)."""
    console.print(message, soft_wrap=True)


def _damaged_weights(ref: ModelRef) -> str:
    """The first local safetensors file whose header cannot be read (else the model's name)."""
    for path in sorted(Path(ref.source).glob("*.safetensors")):
        try:
            with safe_open(str(path), framework="pt"):
                pass
        except SafetensorError:
            return str(path)
    return ref.name


def load_model(ref: ModelRef, device: str = "cpu", trust_remote_code: bool = False, config=None):
    """fp32 weights, frozen, in eval mode. `config`: already loaded by `load_config`."""
    from transformers import AutoModelForCausalLM

    config = config if config is not None else load_config(ref, trust_remote_code)
    try:
        with console.status(f"loading {ref.name}"):
            model = AutoModelForCausalLM.from_pretrained(
                ref.source,
                config=config,
                dtype=torch.float32,
                use_safetensors=True,
                trust_remote_code=trust_remote_code,
            )
    except SafetensorError as exc:
        raise GcmEditError(
            f"unreadable weights in {_damaged_weights(ref)} ({exc}): the file may be truncated; "
            "download or save the model again"
        ) from exc
    except OSError as exc:
        if "safetensors" in str(exc).lower():
            raise GcmEditError(
                f"{ref.name} has no safetensors weights; pickle checkpoints are refused "
                "(convert it with `save_pretrained(safe_serialization=True)`)"
            ) from exc
        raise _hub_error(ref, exc) from exc
    model.requires_grad_(False)
    return model.to(device).eval()


def load_pretrained(
    name: str = DEFAULT_MODEL, device: str = "cpu", trust_remote_code: bool = False
):
    """(model, tokenizer) by name: the built-in default model, a local HF folder, a .gguf file
    or a hub id."""
    ref = resolve_model(name)
    return load_model(ref, device, trust_remote_code), load_tokenizer(ref, trust_remote_code)


def load_tokenizer(ref: ModelRef, trust_remote_code: bool = False):
    """The model's tokenizer; a folder without a usable one is a one-line error."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(ref.source, trust_remote_code=trust_remote_code)
    except Exception as exc:  # transformers raises many types for missing or broken files
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GcmEditError(
            f"{ref.name} has no usable tokenizer ({reason[:160]}): the folder needs the files "
            "`tokenizer.save_pretrained` writes (tokenizer.json, tokenizer_config.json)"
        ) from exc
    if not isinstance(tokenizer.vocab_size, int) or tokenizer.vocab_size < 1:
        raise GcmEditError(f"{ref.name}: its tokenizer has an empty vocabulary")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer
