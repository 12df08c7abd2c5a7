"""What every Lightning Trainer here shares: the model's device, and Lightning's expected noise."""

from __future__ import annotations

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
    """Silence warnings that are expected here and tell a user nothing."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "predict returned None")  # results go into a buffer
        warnings.filterwarnings("ignore", r".*isinstance\(treespec, LeafSpec\)")  # torch↔Lightning
        warnings.filterwarnings("ignore", r".*module\(s\) in eval mode")  # frozen model on purpose
        yield
