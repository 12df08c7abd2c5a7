"""Output folders are written whole or not at all: staged beside the target, then renamed.

`check_output` runs before any work. It refuses an --out that cannot be written or that would
overwrite an input (the model, the recipe and its data files), the cache or the folder the user
works in, and locks it (`.OUT.lock`,
holding the writer's pid) until the folder is installed, so a second run writing the same
folder fails at once instead of silently replacing the first one's result. Staging folders
carry their run's pid (`.OUT.partial-PID-XXXXXXXX`): the next run removes a killed run's.
Parent folders made for OUT are removed again when the run ends without writing it.
"""

from __future__ import annotations

import atexit
import errno
import fcntl
import glob
import os
import re
import shlex
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from gcm_edit.cache import cache_root
from gcm_edit.console import console
from gcm_edit.errors import GcmEditError

_LOCKS: dict[Path, int] = {}  # absolute OUT -> descriptor of the lock file this process holds
_MADE: dict[Path, list[Path]] = {}  # absolute OUT -> parent folders made for it, deepest first
Inputs = Sequence[tuple[str, Path]]  # (what it is, e.g. "the model file"; where)


def _lock_file(out: Path) -> Path:
    return out.with_name(f".{out.name}.lock")


def _check_target(out: Path, inputs: Inputs) -> None:
    """OUT must not be or hold an input (file or folder), nor sit inside an input folder or
    the cache, and must not be (or hold) the current or home folder: replacing it with
    --force would delete them."""
    target = out.resolve()
    guarded = [
        ("the gcm-edit cache", cache_root(), True),
        ("the current folder", Path.cwd(), False),
        ("your home folder", Path.home(), False),
        *((name, Path(path), Path(path).is_dir()) for name, path in inputs),
    ]
    for name, folder, nor_inside in guarded:
        folder = folder.resolve()
        if target == folder:
            relation = "is"
        elif target in folder.parents:
            relation = "holds"
        elif nor_inside and folder in target.parents:
            relation = "is inside"
        else:
            continue
        raise GcmEditError(f"--out {out} {relation} {name} ({folder}); choose another path")


def _check_parent(out: Path) -> None:
    """Create OUT's parent folder if needed (remembered, see `_forget`) and prove it writable,
    before any work is done."""
    parent = out.parent
    try:
        existing = next(p for p in (parent, *parent.parents) if p.exists())
        if not existing.is_dir():
            raise GcmEditError(f"--out {out}: {existing} is a file, not a folder")
        missing = [p for p in (parent, *parent.parents) if not p.exists()]  # deepest first
        parent.mkdir(parents=True, exist_ok=True)
        _MADE.setdefault(out.absolute(), []).extend(p.absolute() for p in missing)
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as exc:
        _forget(out.absolute())
        raise GcmEditError(f"--out {out}: cannot write in {parent} ({exc.strerror})") from None


def _forget(out: Path) -> None:
    """Remove the (still empty) parent folders made for OUT when OUT was never written."""
    for folder in _MADE.pop(out, []):
        if not out.exists():
            try:
                folder.rmdir()
            except OSError:  # something else was put there meanwhile: keep it
                break


def _lock(out: Path) -> None:
    """Hold OUT's lock file (flock) for this process; another holder is a one-line error."""
    if out in _LOCKS:  # an earlier failed call in this process (library use) still holds it
        return
    path = _lock_file(out)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.read(fd, 32).decode(errors="replace").strip()
            os.close(fd)
            holder = f"pid {pid}" if pid.isdigit() else "pid unknown"
            raise GcmEditError(
                f"--out {out} is being written by another gcm-edit run ({holder}); wait for it "
                "to finish or choose another --out"
            ) from None
        try:
            current = os.stat(path)
        except FileNotFoundError:
            current = None
        opened = os.fstat(fd)
        if current and (current.st_dev, current.st_ino) == (opened.st_dev, opened.st_ino):
            break
        os.close(fd)  # its holder removed the file as we opened it: lock the new one
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    _LOCKS[out] = fd


def _unlock(out: Path) -> None:
    """Remove the lock file, then release it (a run waiting on the old file retries)."""
    fd = _LOCKS.pop(out, None)
    if fd is not None:
        _lock_file(out).unlink(missing_ok=True)
        os.close(fd)
    _forget(out)


@atexit.register
def release_outputs() -> None:
    """Release every output lock this process holds, and remove the empty folders made for
    outputs never written: the CLI calls it when a command ends."""
    for out in list(_LOCKS):
        _unlock(out)
    for out in list(_MADE):
        _forget(out)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        pass
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def _remove_dead_leftovers(out: Path) -> None:
    """Staging or replaced folders left for OUT by runs that were killed (their pid is gone)."""
    pattern = re.compile(rf"\.{re.escape(out.name)}\.(?:partial|old)-(\d+)-\w+")
    dead = [
        path
        for path in sorted(out.parent.glob(f".{glob.escape(out.name)}.*"))
        if (match := pattern.fullmatch(path.name)) and not _alive(int(match[1]))
    ]
    for path in dead:
        _remove(path)
    if dead:
        console.print(
            f"[yellow]note:[/] removed what interrupted runs left in {out.parent}: "
            f"{', '.join(p.name for p in dead)}",
            soft_wrap=True,
        )


def check_output(out: Path, force: bool, inputs: Inputs = (), writer: bool = True) -> Path:
    """Check and lock the output folder OUT before any work (see the module docstring).

    `inputs`: what the run reads (`Run.inputs`). `writer`: False in the extra processes of a
    multi-device scoring run, which write nothing (rank 0 checks and locks)."""
    _check_target(out, inputs)
    if not writer:
        return out
    _check_parent(out)
    key = out.absolute()
    _lock(key)
    try:
        if out.exists() and not (out.is_dir() or out.is_file()):
            raise GcmEditError(f"--out {out} is neither a folder nor a regular file")
        if out.exists() and not force:
            raise GcmEditError(f"{out} already exists; pass --force to replace it")
        _remove_dead_leftovers(key)
    except BaseException:
        _unlock(key)
        raise
    return out


def check_output_file(out: Path, inputs: Inputs = (), force: bool = False) -> Path:
    """Check a file a command writes when it ends (a CSV, a JSON report) before any work:
    like a folder, an existing file is replaced only with --force."""
    _check_target(out, inputs)
    if out.is_dir():
        raise GcmEditError(f"--out {out} is a folder; give a file path")
    if out.exists() and not force:
        raise GcmEditError(f"--out {out} exists; pass --force to replace it")
    _check_parent(out)
    return out


def _disk_full(exc: BaseException) -> bool:
    """Out of space, whoever wrote: Python (OSError) or a library in Rust or C (safetensors
    reports "No space left on device (os error 28)")."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return f"os error {errno.ENOSPC})" in str(exc) or os.strerror(errno.ENOSPC) in str(exc)


@contextmanager
def staged_folder(out: Path) -> Iterator[Path]:
    """Yield a hidden sibling folder; on success it replaces `out` (an old folder or file is
    removed last). Either way, OUT's lock is released when it ends."""
    key = out.absolute()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        prefix = f".{out.name}.partial-{os.getpid()}-"
        staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=prefix))
        try:
            yield staging
            for path in staging.iterdir():
                path.chmod(0o644)
            staging.chmod(0o755)
            if out.exists() or out.is_symlink():
                trash = out.with_name(
                    f".{out.name}.old-{os.getpid()}-{staging.name[len(prefix) :]}"
                )
                out.rename(trash)
                staging.rename(out)
                _remove(trash)
            else:
                staging.rename(out)
        except BaseException as exc:
            shutil.rmtree(staging, ignore_errors=True)
            if _disk_full(exc):
                raise GcmEditError(
                    f"--out {out}: no space left on {out.parent}'s disk; nothing was written "
                    "(free some space or choose another --out)"
                ) from None
            raise
    finally:
        _unlock(key)


def weights_bytes(folder: Path) -> int:
    """Size of a folder's safetensors files: what a user downloads to use it."""
    return sum(p.stat().st_size for p in folder.iterdir() if p.suffix == ".safetensors")


def invocation() -> str:
    """The command line that made an output, recorded so it can be reproduced."""
    return " ".join(["gcm-edit", *(shlex.quote(a) for a in sys.argv[1:])])
