"""One rank of the 2-process scoring test (DDP or FSDP over gloo), run by scoring/test_ddp.py
(not collected by pytest): `ddp_worker.py OUT.safetensors STRATEGY`.

The test sets LOCAL_RANK/MASTER_PORT itself, so Lightning joins the process group instead of
launching processes: this is how `torchrun` or a cluster runs multi-device scoring.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from safetensors.torch import save_file
from tiny import make_llama, make_pairs

from gcm_edit.scoring.methods import score_heads
from gcm_edit.scoring.runtime import ScoringRuntime

METHODS = ("attribution", "activation", "knockout", "paper", "probe", "distillation")
N_PAIRS = 5  # odd: the two ranks get unequal shares (3 + 2 pairs at batch size 1)


def aligned_pairs():
    """make_pairs with each contrast prompt cut or padded to the original prompt's length."""
    pairs = make_pairs(N_PAIRS, seed=3)
    for p in pairs:
        n = len(p.prompt_orig)
        p.prompt_contrast = (p.prompt_contrast * n)[:n]
    return pairs


def score_all(devices: int, strategy: str = "auto") -> dict[str, torch.Tensor]:
    """Scores by every method, and the share of the model's weights this process held at the
    end (FSDP leaves the model it scored sharded, so each method gets a fresh one)."""
    torch.set_num_threads(1)
    deltas = torch.randn(3, 4, 16, generator=torch.Generator().manual_seed(11), dtype=torch.float64)
    pairs = aligned_pairs()
    out = {}
    for method in METHODS:
        model = make_llama("gqa_head_dim16", seed=5, dtype=torch.float64)
        runtime = ScoringRuntime(batch_size=1, head_batch=3, devices=devices, strategy=strategy)
        out[method] = score_heads(model, pairs, deltas, 1, method, runtime).contiguous()
    local = sum(getattr(p, "_local_tensor", p).numel() for p in model.parameters())
    out["held_share"] = torch.tensor(local / sum(p.numel() for p in model.parameters()))
    return out


if __name__ == "__main__":
    scores = score_all(devices=2, strategy=sys.argv[2])
    scores["world_size"] = torch.tensor(torch.distributed.get_world_size())
    scores["rank"] = torch.tensor(torch.distributed.get_rank())
    save_file(scores, str(Path(sys.argv[1])))
