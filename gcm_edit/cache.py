"""On-disk cache: where expensive stages keep their outputs, keyed by a hash of their inputs.

Every entry is written atomically (temp file + rename) inside an envelope that names its kind,
its schema and the key it was written for, and carries a sha256 of its payload. Reading one
back checks all four and the caller's own validation; an entry that fails (damaged, or copied
over another key's file) is reported in one line, removed and recomputed, so a damaged cache
never crashes a run or feeds it wrong data.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from gcm_edit.console import console
from gcm_edit.errors import GcmEditError

T = TypeVar("T")
# Bump when the layout of any cached artifact changes: older entries are then recomputed.
# 3: entries record their key.
SCHEMA = 3


def cache_root() -> Path:
    """`GCM_EDIT_CACHE`, else `$XDG_CACHE_HOME/gcm-edit`, else `~/.cache/gcm-edit`. Checked
    on every call (a stat or two): one naming a file fails in one line before any work, not
    with NotADirectoryError a minute in, when the first stage stores its result."""
    if env := os.environ.get("GCM_EDIT_CACHE"):
        root, source = Path(env), "GCM_EDIT_CACHE"
    elif xdg := os.environ.get("XDG_CACHE_HOME"):
        root, source = Path(xdg) / "gcm-edit", "XDG_CACHE_HOME"
    else:
        root, source = Path.home() / ".cache" / "gcm-edit", "the cache folder"
    if (blocking := _not_a_folder(root)) is not None:
        raise GcmEditError(
            f"{source} {root}: {blocking} is not a folder; point GCM_EDIT_CACHE at a folder "
            "you can write (it is created if missing)"
        )
    return root


def _not_a_folder(root: Path) -> Path | None:
    """The nearest existing path at or above `root` when it is not a folder (a file, a dead
    link), else None. Unreadable parents are left to the first write to report."""
    for path in (root, *root.parents):
        try:
            if path.is_dir():
                return None
            if path.exists() or path.is_symlink():
                return path
        except OSError:
            return None
    return None


def stable_hash(*parts: Any) -> str:
    """A short, order-sensitive hash of JSON-serialisable parts (stage cache keys)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temp file + rename so a crash never leaves a truncated cache entry."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, default=str) + "\n")


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def _json_digest(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _tensor_digest(tensors: dict) -> str:
    import torch  # not at the top: the command line imports this module and starts fast

    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].contiguous().cpu()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def store_entry(path: Path, kind: str, key: str, payload: Any) -> None:
    """A JSON payload (`.json`) or a dict of tensors (`.safetensors`) for `key`, atomically."""
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        tensors = {name: t.contiguous() for name, t in payload.items()}
        meta = {"kind": kind, "schema": str(SCHEMA), "key": key}
        meta["sha256"] = _tensor_digest(tensors)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        os.close(fd)
        try:
            save_file(tensors, tmp, metadata=meta)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    else:
        envelope = {"kind": kind, "schema": SCHEMA, "key": key, "sha256": _json_digest(payload)}
        write_json(path, {**envelope, "data": payload})


def _check_envelope(stored: tuple, expected: tuple) -> None:
    """(kind, schema, key) as written against as expected: ValueError naming the difference."""
    kind, schema, key = stored
    if (kind, schema) != expected[:2]:
        raise ValueError(f"holds {kind} schema {schema}, expected {expected[0]} {expected[1]}")
    if key != expected[2]:
        raise ValueError(f"written for key {key}, not {expected[2]}")


def _read_entry(path: Path, kind: str, key: str) -> Any:
    """The payload, or ValueError saying what is wrong with the entry."""
    if not path.is_file():
        raise ValueError("not a regular file")
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            payload = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118
        stored = (meta.get("kind"), meta.get("schema"), meta.get("key"))
        _check_envelope(stored, (kind, str(SCHEMA), key))
        if meta.get("sha256") != _tensor_digest(payload):
            raise ValueError("checksum mismatch")
        return payload
    data = read_json(path)
    if not isinstance(data, dict):
        raise ValueError(f"not a {kind} entry of schema {SCHEMA}")
    _check_envelope((data.get("kind"), data.get("schema"), data.get("key")), (kind, SCHEMA, key))
    if data.get("sha256") != _json_digest(data.get("data")):
        raise ValueError("checksum mismatch")
    return data["data"]


def _discard(path: Path) -> None:
    """Remove an entry that is a file, a link or (put there by hand) a folder."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def load_entry(path: Path, kind: str, key: str, decode: Callable[[Any], T]) -> T | None:
    """The value cached for `key`, None when there is none; an entry that is damaged or was
    written for another key is reported in one line and removed.

    `decode` turns the payload into the value and raises on anything implausible."""
    if not (path.exists() or path.is_symlink()):
        return None
    try:
        return decode(_read_entry(path, kind, key))
    except Exception as exc:  # any entry that cannot be read back whole is recomputed
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        console.print(f"[yellow]cache:[/] discarded {path} ({reason}); recomputing", soft_wrap=True)
        _discard(path)
        return None
