"""Output folders are written whole or not at all: staged beside the target, then renamed."""

from __future__ import annotations

import shlex
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gcm_edit.errors import GcmEditError


def check_output(out: Path, force: bool) -> Path:
    if out.exists() and not force:
        raise GcmEditError(f"{out} already exists; pass --force to replace it")
    return out


@contextmanager
def staged_folder(out: Path) -> Iterator[Path]:
    """Yield a hidden sibling folder; on success it replaces `out` (an old one is removed last)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.partial-"))
    try:
        yield staging
        for path in staging.iterdir():
            path.chmod(0o644)
        staging.chmod(0o755)
        if out.exists():
            trash = out.with_name(f".{out.name}.old-{staging.name.rsplit('-', 1)[-1]}")
            out.rename(trash)
            staging.rename(out)
            shutil.rmtree(trash)
        else:
            staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def weights_bytes(folder: Path) -> int:
    """Size of a folder's safetensors files: what a user downloads to use it."""
    return sum(p.stat().st_size for p in folder.iterdir() if p.suffix == ".safetensors")


def invocation() -> str:
    """The command line that made an output, recorded so it can be reproduced."""
    return " ".join(["gcm-edit", *(shlex.quote(a) for a in sys.argv[1:])])
