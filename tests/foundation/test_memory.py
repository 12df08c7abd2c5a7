"""Peak memory per stage: each stage's own peak, nested stages folded into the enclosing one,
by the kernel's high-water mark where its reset works and by sampling where it does not, and
no figures (rather than wrong ones) where the kernel gives none."""

from __future__ import annotations

import mmap
import subprocess
import sys
import time

import pytest

from gcm_edit import memory
from gcm_edit.memory import StagePeaks

MB = 1_000_000
LINUX = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")


def _touch(n_bytes: int) -> bytearray:
    block = bytearray(n_bytes)
    block[::4096] = b"x" * len(block[::4096])  # resident, not just reserved
    return block


def _stages(peaks: StagePeaks) -> dict[str, float]:
    """outer ⊃ inner (400 MB, freed before it ends), then a small stage."""
    peaks.enter()  # outer
    peaks.enter()  # inner
    block = _touch(400 * MB)
    time.sleep(0.05)  # a few sampling periods with the block resident
    del block
    peaks.leave("inner")
    peaks.leave("outer")
    peaks.enter()  # a later stage that allocates little must not inherit the 400 MB
    _touch(20 * MB)
    peaks.leave("small")
    return peaks.peaks_gb


@LINUX
@pytest.mark.parametrize("kernel", [True, False], ids=["kernel", "sampled"])
def test_each_stage_has_its_own_peak_and_inner_peaks_fold_outward(kernel):
    if kernel and not memory.kernel_reset_works():
        pytest.skip("this kernel accepts the VmHWM reset and ignores it (the sampled case runs)")
    peaks = StagePeaks(kernel=kernel)
    assert peaks.method == ("kernel high-water mark" if kernel else memory._SampledPeak.name)
    got = _stages(peaks)
    assert got["inner"] >= memory.rss_gb() + 0.35
    assert got["outer"] >= got["inner"]  # the inner mark did not hide it from the outer
    assert got["small"] < got["inner"] - 0.3
    if not kernel:
        assert peaks._source._thread is None  # no stage open: the sampler has stopped


@LINUX
def test_the_probe_matches_what_the_kernel_does():
    """The probe says the reset works exactly when a reset lowers a raised peak (raised by a
    mapping that is unmapped, so the allocator cannot keep it resident)."""
    with mmap.mmap(-1, 200 * MB) as block:
        block[:: mmap.PAGESIZE] = b"x" * len(range(0, 200 * MB, mmap.PAGESIZE))
    raised = memory.rss_high_water_gb()
    memory.reset_high_water()
    lowered = memory.rss_high_water_gb() < raised - 0.15
    assert memory.kernel_reset_works() == lowered
    assert StagePeaks().method == (
        "kernel high-water mark" if lowered else memory._SampledPeak.name
    )


@LINUX
def test_a_reset_that_is_accepted_and_ignored_falls_back_to_sampling(monkeypatch):
    """As on the CI machine: the write to clear_refs succeeds and VmHWM stays put."""
    monkeypatch.setattr(memory, "reset_high_water", lambda: True)
    assert not memory.kernel_reset_works()
    peaks = StagePeaks()
    assert peaks.method == memory._SampledPeak.name
    got = _stages(peaks)
    assert got["small"] < got["inner"] - 0.3


def test_without_the_kernel_figures_there_are_no_peaks(monkeypatch, tmp_path):
    monkeypatch.setattr(memory, "_STATUS", tmp_path / "missing")
    monkeypatch.setattr(memory, "_CLEAR_REFS", tmp_path / "no" / "clear_refs")
    peaks = StagePeaks()
    assert peaks.method is None
    peaks.enter()
    peaks.leave("stage")
    assert peaks.peaks_gb == {}


def _released_pages_leave_rss() -> bool:
    """The control: what malloc_trim does (madvise DONTNEED) lowers VmRSS here."""
    block = mmap.mmap(-1, 100 * MB)
    block.write(b"x" * (100 * MB))
    touched = memory.rss_gb()
    block.madvise(mmap.MADV_DONTNEED)
    released = memory.rss_gb() < touched - 0.08
    block.close()
    return released


_LEFT_FREE = """
import torch
from gcm_edit import memory
torch.ones(2_000_000)  # an 8 MB block, freed: glibc now serves 1 MB blocks from its heap
blocks, pins = [], []
for _ in range(300):  # 1 MB blocks, each followed by a small live one
    blocks.append(torch.ones(250_000))
    pins.append(torch.ones(16))
del blocks
kept = memory.rss_gb()
peaks = memory.StagePeaks()
peaks.enter()
peaks.leave("next")
print(kept, memory.rss_gb(), peaks.peaks_gb["next"])
"""


@LINUX
def test_a_stage_starts_without_the_free_memory_an_earlier_one_left():
    """Freed blocks between live ones stay resident (glibc keeps them) until released; in a
    fresh interpreter, where the heap is as glibc leaves it by default."""
    if not _released_pages_leave_rss():
        pytest.skip("this kernel does not count pages released by madvise out of VmRSS")
    run = subprocess.run([sys.executable, "-c", _LEFT_FREE], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    kept, after, peak = map(float, run.stdout.split())
    assert kept > 0.45  # the 300 MB were still resident
    assert after < kept - 0.2 and peak < kept - 0.2
