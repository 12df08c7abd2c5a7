"""Every export is checked: the folder, loaded by plain transformers in a separate process with
no gcm_edit code, must equal the hooked steered base model (max |Δlogit| ≤ 1e-4 in fp32 and
identical greedy tokens)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from pydantic import BaseModel
from safetensors.torch import load_file

from gcm_edit.checkpoint import plain_runner
from gcm_edit.errors import GcmEditError
from gcm_edit.steering.plan import SteeringPlan

LOGIT_TOLERANCE = 1e-4
GREEDY_TOKENS = 24
VERIFY_PROMPTS = 3


class Verification(BaseModel):
    max_abs_logit_diff: float
    greedy_identical: bool
    n_prompts: int
    greedy_tokens: int
    tolerance: float = LOGIT_TOLERANCE


def run_plain(folder: Path, prompts: list[list[int]], greedy_tokens: int) -> dict:
    """Logits and greedy tokens of `folder` computed in a fresh interpreter."""
    with tempfile.TemporaryDirectory(prefix="gcm-verify-") as tmp:
        request, target = Path(tmp) / "request.json", Path(tmp) / "out.safetensors"
        request.write_text(json.dumps({"prompts": prompts, "greedy_tokens": greedy_tokens}))
        proc = subprocess.run(
            # absolute: the child runs in a temp cwd, and a relative path would be read as a hub id
            [
                sys.executable,
                plain_runner.__file__,
                str(folder.resolve()),
                str(request),
                str(target),
            ],
            capture_output=True,
            text=True,
            cwd=tmp,
        )
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        if proc.returncode == plain_runner.REJECTED:
            raise GcmEditError(f"verification failed for {folder}: {last}")
        if proc.returncode != 0:
            raise GcmEditError(f"could not load {folder} with plain transformers: {last}")
        return load_file(str(target))


def verify_export(
    folder: Path | str,
    base_model,
    plan: SteeringPlan,
    prompts: list[list[int]],
    greedy_tokens: int = GREEDY_TOKENS,
) -> Verification:
    """Compare the export to the hooked base model; raise GcmEditError on any mismatch."""
    folder = Path(folder)
    exported = run_plain(folder, prompts, greedy_tokens)
    with plan.apply(base_model, next(base_model.parameters()).device):
        hooked = plain_runner.run_prompts(base_model, prompts, greedy_tokens)
    logits = range(len(prompts))
    if not all(torch.isfinite(hooked[f"logits.{i}"]).all() for i in logits):
        raise GcmEditError(
            "verification failed: the hooked steered model itself gives non-finite logits "
            "(NaN or inf): the steering plan overflows the model; lower --alpha"
        )
    if not all(torch.isfinite(exported[f"logits.{i}"]).all() for i in logits):
        raise GcmEditError(f"verification failed for {folder}: its logits are NaN or inf")
    diff = max(float((hooked[f"logits.{i}"] - exported[f"logits.{i}"]).abs().max()) for i in logits)
    same = all(
        hooked[f"greedy.{i}"].tolist() == exported[f"greedy.{i}"].tolist()
        for i in range(len(prompts))
    )
    result = Verification(
        max_abs_logit_diff=diff,
        greedy_identical=same,
        n_prompts=len(prompts),
        greedy_tokens=greedy_tokens,
    )
    if not math.isfinite(diff) or diff > LOGIT_TOLERANCE or not same:  # fails closed on NaN
        raise GcmEditError(
            f"verification failed for {folder}: max |Δlogit| {diff:.2e} "
            f"(limit {LOGIT_TOLERANCE:.0e}), greedy tokens identical: {same}"
        )
    return result
