"""Ctrl-C during a Lightning stage: Lightning catches KeyboardInterrupt and calls sys.exit(1);
the stage must raise KeyboardInterrupt instead, so the CLI exits 130 with "error: interrupted"
(as the README promises), and leave Ctrl-C working after it."""

from __future__ import annotations

import os
import signal

import lightning as L
import pytest
import torch
import typer
from torch.utils.data import DataLoader

from gcm_edit.model.trainers import fit_steps, interrupts_raised, quiet_lightning

CPU = torch.device("cpu")


class Interrupted(L.LightningModule):
    """A linear model that sends itself `signum` at its second step (or predict batch)."""

    def __init__(self, signum: int):
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)
        self.signum = signum
        self.steps = 0

    def _step(self, batch) -> torch.Tensor:
        self.steps += 1
        if self.steps == 2:
            os.kill(os.getpid(), self.signum)  # delivered before the next bytecode
        return self.layer(batch).pow(2).mean()

    def training_step(self, batch, _index):
        return self._step(batch)

    def predict_step(self, batch, _index):
        return self._step(batch)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _loader() -> DataLoader:
    return DataLoader(torch.randn(8, 2), batch_size=2)


@pytest.fixture
def ctrl_c():
    """Python's own Ctrl-C handler for the test (raise KeyboardInterrupt), put back after."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield signal.default_int_handler
    signal.signal(signal.SIGINT, before)


def test_ctrl_c_during_a_fit_raises_keyboard_interrupt(ctrl_c):
    module = Interrupted(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        fit_steps(module, _loader(), steps=6, device=CPU)
    assert module.steps == 2  # stopped where it was interrupted
    assert signal.getsignal(signal.SIGINT) is ctrl_c  # not left ignored (SIG_IGN) by Lightning


def test_ctrl_c_during_a_predict_raises_keyboard_interrupt(ctrl_c):
    """The scoring engine's predict loop goes through the same guard."""
    module = Interrupted(signal.SIGINT)
    with quiet_lightning(), pytest.raises(KeyboardInterrupt):
        trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False)
        with interrupts_raised(trainer):
            trainer.predict(module, dataloaders=_loader(), return_predictions=False)
    assert module.steps == 2
    assert signal.getsignal(signal.SIGINT) is ctrl_c


def test_other_exits_and_errors_pass_through(ctrl_c):
    """Only Lightning's exit after a KeyboardInterrupt is turned back into one."""
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False)
    with pytest.raises(SystemExit), interrupts_raised(trainer):
        raise SystemExit(3)
    with pytest.raises(ValueError), interrupts_raised(trainer):
        raise ValueError("boom")


def test_sigterm_during_a_fit_exits_130_through_the_cli(ctrl_c, capsys):
    """`kill` during a distilled edit: run_job's SIGTERM handler raises KeyboardInterrupt
    inside Lightning, and the command exits 130 with one line."""
    from gcm_edit.cli.app import INTERRUPTED, run_job

    sigterm = signal.getsignal(signal.SIGTERM)
    try:
        with pytest.raises(typer.Exit) as info:
            run_job(lambda: fit_steps(Interrupted(signal.SIGTERM), _loader(), 6, CPU))
    finally:
        signal.signal(signal.SIGTERM, sigterm)
    assert info.value.exit_code == INTERRUPTED == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == "error: interrupted"
