"""Peak resident memory per stage, so a manifest says what each stage needed (not only the
process's peak). Where the kernel lets the high-water mark (VmHWM) be reset
(`/proc/self/clear_refs`), each stage's figure is the kernel's own; a kernel or sandbox may
accept the reset and ignore it, so a probe checks that a reset lowers a raised peak and
otherwise a thread samples the resident size (VmRSS) every few milliseconds. Nested stages
fold their peaks into the enclosing one. Without /proc the figures are absent rather than wrong.

Each stage starts by handing the heap's free pages back to the kernel: glibc keeps what freed
tensors occupied (after scoring the default model, 2.3 GB of a 3.3 GB resident size), and
every later stage would carry it, in memory and in its figure."""

from __future__ import annotations

import contextlib
import ctypes
import mmap
import threading
from pathlib import Path

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")
SAMPLE_SECONDS = 0.005
_PROBE_BYTES = 64 * 1024 * 1024


def _status_gb(field: str) -> float | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1]) * 1024 / 1e9
    except OSError:
        return None
    return None


def rss_gb() -> float | None:
    """The process's resident set size now, in GB (None without /proc)."""
    return _status_gb("VmRSS:")


def rss_high_water_gb() -> float | None:
    """The process's peak resident set size since the last reset, in GB (None without /proc)."""
    return _status_gb("VmHWM:")


def reset_high_water() -> bool:
    """Ask the kernel to set the peak to the current resident size; False where it refuses."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def release_freed_memory() -> None:
    """glibc's malloc_trim: return free heap pages to the kernel (a no-op where there is none)."""
    with contextlib.suppress(AttributeError, OSError, TypeError):
        ctypes.CDLL(None).malloc_trim(0)


def kernel_reset_works() -> bool:
    """Raise the peak with a transient 64 MB mapping, reset, and see whether the peak fell. The
    block is mapped and unmapped directly, not through the allocator, which may keep a freed
    block resident (then no reset could lower the peak and a working kernel would look broken)."""
    if rss_high_water_gb() is None:
        return False
    with mmap.mmap(-1, _PROBE_BYTES) as block:
        block[:: mmap.PAGESIZE] = b"x" * (_PROBE_BYTES // mmap.PAGESIZE)  # resident, not reserved
    before = rss_high_water_gb() or 0.0
    return reset_high_water() and (rss_high_water_gb() or before) < before - 0.03


class _KernelPeak:
    """The kernel's high-water mark: exact, and free."""

    name = "kernel high-water mark"

    def mark(self) -> None:
        reset_high_water()

    def peak(self) -> float:
        return rss_high_water_gb() or 0.0

    def stop(self) -> None:
        pass


class _SampledPeak:
    """The largest resident size a background thread saw since `mark()`: misses spikes shorter
    than SAMPLE_SECONDS (torch releases the interpreter lock inside its kernels, so large
    tensors are seen)."""

    name = f"resident size sampled every {SAMPLE_SECONDS * 1000:g} ms"

    def __init__(self) -> None:
        self._max = 0.0
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        now = rss_gb() or 0.0
        with self._lock:
            self._max = max(self._max, now)

    def _loop(self) -> None:
        while not self._done.wait(SAMPLE_SECONDS):
            self._sample()

    def mark(self) -> None:
        with self._lock:
            self._max = rss_gb() or 0.0
        if self._thread is None:
            self._done.clear()
            self._thread = threading.Thread(target=self._loop, name="peak-rss", daemon=True)
            self._thread.start()

    def peak(self) -> float:
        self._sample()
        return self._max

    def stop(self) -> None:
        if self._thread is not None:
            self._done.set()
            self._thread.join()
            self._thread = None


def _peak_source(kernel: bool | None = None) -> _KernelPeak | _SampledPeak | None:
    if rss_gb() is None:
        return None
    return _KernelPeak() if (kernel_reset_works() if kernel is None else kernel) else _SampledPeak()


class StagePeaks:
    """Peak RSS of each (possibly nested) stage: `enter()` before it, `leave(name)` after.
    `kernel`: force (True) or forbid (False) the kernel's mark; by default a probe decides."""

    def __init__(self, kernel: bool | None = None) -> None:
        self.peaks_gb: dict[str, float] = {}
        self._open: list[float] = []  # the peak seen so far by each enclosing stage
        self._source = _peak_source(kernel)
        self.method = self._source.name if self._source else None  # None: no figures

    def enter(self) -> None:
        release_freed_memory()
        if self._source is None:
            return
        if self._open:  # the mark below would lose what the enclosing stage has seen so far
            self._open[-1] = max(self._open[-1], self._source.peak())
        self._open.append(0.0)
        self._source.mark()

    def leave(self, name: str) -> None:
        if self._source is None:
            return
        peak = max(self._open.pop(), self._source.peak())
        if self._open:
            self._open[-1] = max(self._open[-1], peak)
        else:
            self._source.stop()  # no stage open: no thread left running between stages
        self.peaks_gb[name] = round(max(self.peaks_gb.get(name, 0.0), peak), 3)
