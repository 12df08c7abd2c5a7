"""Peak resident memory per stage, so a manifest says what each stage needed (not only the
process's peak). On Linux the kernel's high-water mark (VmHWM) is reset at a stage's start
(`/proc/self/clear_refs`), so each stage's figure is its own; nested stages fold their peaks
into the enclosing one. Elsewhere the figures are absent rather than wrong."""

from __future__ import annotations

from pathlib import Path

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def rss_high_water_gb() -> float | None:
    """The process's peak resident set size since the last reset, in GB (None off Linux)."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / 1e9
    except OSError:
        return None
    return None


def reset_high_water() -> bool:
    """Set the peak to the current resident size; False where the kernel does not allow it."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


class StagePeaks:
    """Peak RSS of each (possibly nested) stage: `enter()` before it, `leave(name)` after."""

    def __init__(self) -> None:
        self.peaks_gb: dict[str, float] = {}
        self._open: list[float] = []  # the peak seen so far by each enclosing stage
        self.enabled = rss_high_water_gb() is not None and reset_high_water()

    def enter(self) -> None:
        if not self.enabled:
            return
        if self._open:  # the reset below would lose what the enclosing stage has seen so far
            self._open[-1] = max(self._open[-1], rss_high_water_gb() or 0.0)
        self._open.append(0.0)
        reset_high_water()

    def leave(self, name: str) -> None:
        if not self.enabled:
            return
        peak = max(self._open.pop(), rss_high_water_gb() or 0.0)
        if self._open:
            self._open[-1] = max(self._open[-1], peak)
        self.peaks_gb[name] = round(max(self.peaks_gb.get(name, 0.0), peak), 3)
