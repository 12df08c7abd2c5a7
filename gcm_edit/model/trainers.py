"""What every Lightning Trainer here shares: the model's device, and Lightning's expected noise."""

from __future__ import annotations

import logging
import math
import signal
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import torch


def device_args(device: torch.device, n_devices: int = 1) -> dict:
    """Trainer accelerator/devices for a model already placed on `device`."""
    on_gpu = device.type == "cuda"
    devices = [device.index or 0] if on_gpu and n_devices == 1 else n_devices
    return {"accelerator": "gpu" if on_gpu else "cpu", "devices": devices}


@contextmanager
def quiet_lightning() -> Iterator[None]:
    """Silence warnings and notices that are expected here and tell a user nothing ("GPU
    available: False", tips). Lightning sets its own log level when it is imported, so this
    is done around each Trainer's life, not once at start-up."""
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "predict returned None")  # results: a buffer
            warnings.filterwarnings("ignore", r".*isinstance\(treespec, LeafSpec\)")  # torch↔L
            warnings.filterwarnings("ignore", r".*module\(s\) in eval mode")  # frozen on purpose
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


@contextmanager
def interrupts_raised(trainer) -> Iterator[None]:
    """Around a Trainer call: Ctrl-C (and SIGTERM, which the CLI turns into it) comes out as
    KeyboardInterrupt, so the CLI exits 130 with "error: interrupted". Lightning catches it,
    shuts down, leaves Ctrl-C ignored and calls sys.exit(1) (lightning/pytorch/trainer/
    call.py): an exit 1 with no word. Its `on_exception` hook tells that exit apart."""
    from lightning.pytorch.callbacks import Callback

    class NoteInterrupt(Callback):
        caught = False

        def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
            self.caught |= isinstance(exception, KeyboardInterrupt)

    note = NoteInterrupt()
    trainer.callbacks.append(note)
    main = threading.current_thread() is threading.main_thread()
    handler = signal.getsignal(signal.SIGINT) if main else None
    try:
        yield
    except SystemExit:
        if not note.caught:
            raise
        raise KeyboardInterrupt from None
    finally:
        if note in trainer.callbacks:
            trainer.callbacks.remove(note)
        if handler is not None:  # Lightning set SIG_IGN: a second Ctrl-C must still work
            signal.signal(signal.SIGINT, handler)


def fit_steps(module, loader, steps: int, device: torch.device) -> None:
    """`steps` optimiser steps of `module` on `loader` (epochs as needed), with no logger,
    checkpoints or summary: the frozen-model learners' one way to train."""
    import lightning as L

    with quiet_lightning():
        trainer = L.Trainer(
            **device_args(device),
            max_steps=steps,
            max_epochs=math.ceil(steps / len(loader)),  # the bar's "Epoch i/n"
            logger=False,
            enable_checkpointing=False,
            enable_model_summary=False,
        )
        with interrupts_raised(trainer):
            trainer.fit(module, train_dataloaders=loader)
