"""Timed stages whose outputs are kept in a run folder, keyed by what they compute from."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, TypeVar

import torch
from lightning.pytorch.utilities import rank_zero_only

from gcm_edit.cache import load_entry, store_entry
from gcm_edit.console import console
from gcm_edit.keys import StageConfig
from gcm_edit.memory import StagePeaks

T = TypeVar("T")


def _same(value: Any) -> Any:
    return value


def checked_tensors(
    tensors: dict[str, torch.Tensor], shapes: dict[str, tuple[int, ...]]
) -> dict[str, torch.Tensor]:
    """A cached tensor entry as expected: these names, these shapes, finite values."""
    if set(tensors) != set(shapes):
        raise ValueError(f"holds {sorted(tensors)}, expected {sorted(shapes)}")
    for name, shape in shapes.items():
        if tuple(tensors[name].shape) != shape:
            raise ValueError(f"{name} has shape {tuple(tensors[name].shape)}, expected {shape}")
        if not torch.isfinite(tensors[name]).all():
            raise ValueError(f"{name} holds non-finite values")
    return tensors


class StageRunner:
    """Stages of one run: timed, their peak memory noted, cached in `dir` (set by the
    subclass, which also provides the `model` a computing stage needs)."""

    dir: Path

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self.peaks = StagePeaks()

    @property
    def is_rank_zero(self) -> bool:
        """False in the extra processes of a multi-device scoring run: they stop after it."""
        return rank_zero_only.rank == 0

    def _done(self, name: str, seconds: float, cached: bool) -> None:
        self.timings[name] = self.timings.get(name, 0.0) + seconds
        note = "cached" if cached else f"{self.timings[name]:.1f}s"
        console.print(f"[green]✓[/] {name} ({note})")

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time a stage, note its peak memory and print a line when it is done."""
        start = time.perf_counter()
        self.peaks.enter()
        try:
            yield
        finally:
            self.peaks.leave(name)
        self._done(name, time.perf_counter() - start, cached=False)

    def cached(
        self,
        name: str,
        kind: str,
        stage: StageConfig,
        compute: Callable[[], T],
        encode: Callable[[T], Any] = _same,
        decode: Callable[[Any], T] = _same,
        label: str | None = None,
        needs_model: bool = True,
    ) -> T:
        """The value of a stage from the run folder, else computed (as a timed stage when it
        has a `label`) and stored, keyed by what `stage` computes from. `decode` rejects
        implausible entries (see cache.py)."""
        key = stage.key()
        path = self.dir / name.format(key=key)
        start = time.perf_counter()
        value = load_entry(path, kind, key, decode)
        if value is not None:
            if label:
                self._done(label, time.perf_counter() - start, cached=True)
            return value
        if needs_model:
            _ = self.model  # (the subclass's) loaded outside the stage's timer
        with self.stage(label) if label else nullcontext():
            value = compute()
        if self.is_rank_zero:
            try:
                store_entry(path, kind, key, encode(value))
            except OSError as exc:  # a full or read-only disk costs the cache, not the run
                console.print(
                    f"[yellow]cache:[/] could not store {path.name} ({exc.strerror}); going on "
                    "without it",
                    soft_wrap=True,
                )
        return value
