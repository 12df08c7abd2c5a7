"""DDP and FSDP on CPU (gloo, 2 processes) give the same scores as one process, for every
method."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from ddp_worker import METHODS, score_all
from safetensors.torch import load_file

from gcm_edit.steering.plan import select_heads

TESTS = Path(__file__).parents[1]  # ddp_worker.py sits at the root of tests/
WORKER = TESTS / "ddp_worker.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module", params=["ddp", "fsdp"])
def ddp_scores(request, tmp_path_factory) -> list[dict[str, torch.Tensor]]:
    out = tmp_path_factory.mktemp(request.param)
    port = str(_free_port())
    procs = []
    for rank in range(2):
        env = {
            **os.environ,
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": port,
            "NODE_RANK": "0",
            "LOCAL_RANK": str(rank),
            "GCM_EDIT_CACHE": str(out / "cache"),
        }
        procs.append(
            subprocess.Popen(
                [sys.executable, str(WORKER), str(out / f"rank{rank}.safetensors"), request.param],
                cwd=TESTS,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    for rank, proc in enumerate(procs):
        log, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, f"rank {rank} failed:\n{log[-3000:]}"
    return [load_file(str(out / f"rank{rank}.safetensors")) for rank in range(2)]


@pytest.fixture(scope="module")
def single_scores() -> dict[str, torch.Tensor]:
    return score_all(devices=1)


@pytest.mark.parametrize("method", METHODS)
def test_ddp_equals_single_process(ddp_scores, single_scores, method):
    """Scores are all-reduced: both ranks hold the full result, equal to one process's, and
    select the same heads."""
    for rank_scores in ddp_scores:
        torch.testing.assert_close(rank_scores[method], single_scores[method], rtol=1e-5, atol=1e-6)
        assert select_heads(rank_scores[method], 25) == select_heads(single_scores[method], 25)
    assert single_scores[method].abs().max() > 0


def test_scoring_really_ran_distributed(ddp_scores, request):
    """Equal scores would also come from two independent single-process runs: check the group,
    and that FSDP really split the weights (each process held about half of them)."""
    for rank, rank_scores in enumerate(ddp_scores):
        assert rank_scores["world_size"].item() == 2
        assert rank_scores["rank"].item() == rank
        held = rank_scores["held_share"].item()
        if request.node.callspec.params["ddp_scores"] == "fsdp":
            assert 0.4 < held < 0.6
        else:
            assert held == 1.0
