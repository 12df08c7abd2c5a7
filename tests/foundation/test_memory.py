"""Peak memory per stage: each stage's own peak, nested stages folded into the enclosing one,
and no figures (rather than wrong ones) where the kernel gives none."""

from __future__ import annotations

import sys

import pytest

from gcm_edit import memory
from gcm_edit.memory import StagePeaks

MB = 1_000_000


def _touch(n_bytes: int) -> bytearray:
    block = bytearray(n_bytes)
    block[::4096] = b"x" * len(block[::4096])  # resident, not just reserved
    return block


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="VmHWM is Linux's")
def test_each_stage_has_its_own_peak_and_inner_peaks_fold_outward():
    peaks = StagePeaks()
    assert peaks.enabled
    peaks.enter()  # outer
    peaks.enter()  # inner: 400 MB, freed before it ends
    block = _touch(400 * MB)
    del block
    peaks.leave("inner")
    peaks.leave("outer")
    peaks.enter()  # a later stage that allocates little must not inherit the 400 MB
    _touch(20 * MB)
    peaks.leave("small")
    got = peaks.peaks_gb
    assert got["inner"] >= memory.rss_high_water_gb() + 0.35
    assert got["outer"] >= got["inner"]  # the inner reset did not hide it from the outer
    assert got["small"] < got["inner"] - 0.3


def test_without_the_kernel_figures_there_are_no_peaks(monkeypatch, tmp_path):
    monkeypatch.setattr(memory, "_STATUS", tmp_path / "missing")
    monkeypatch.setattr(memory, "_CLEAR_REFS", tmp_path / "no" / "clear_refs")
    peaks = StagePeaks()
    assert not peaks.enabled
    peaks.enter()
    peaks.leave("stage")
    assert peaks.peaks_gb == {}
