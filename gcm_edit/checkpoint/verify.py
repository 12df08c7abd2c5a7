"""Every export is checked: the folder, loaded by plain transformers in a separate process with
no gcm_edit code, must equal the hooked steered base model (max |Δlogit| ≤ 1e-4 in fp32 and
identical greedy tokens). A GGUF is checked in llama.cpp against the same model
(`verify_gguf`)."""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from pydantic import BaseModel
from safetensors.torch import load_file

from gcm_edit.cache import sha256_file
from gcm_edit.checkpoint import plain_runner
from gcm_edit.checkpoint.gguf import EXACT_TYPES
from gcm_edit.errors import GcmEditError
from gcm_edit.model.llamacpp import LlamaCpp
from gcm_edit.steering.plan import SteeringPlan

LOGIT_TOLERANCE = 1e-4
GREEDY_TOKENS = 24
VERIFY_PROMPTS = 3
# llama.cpp on an f32 GGUF (exact settings) was measured 2.1e-4 nats from transformers at worst
GGUF_TOLERANCE = 1e-3
# Lossy GGUFs: the steering must move log-probabilities this many times more than the
# runtime's error does (measured on the default model: f16 800x, bf16 120x, q8_0 25x)
LOSSY_MARGIN = 10.0


class Verification(BaseModel):
    max_abs_logit_diff: float
    greedy_identical: bool
    n_prompts: int
    greedy_tokens: int
    tolerance: float = LOGIT_TOLERANCE


def check_files(folder: Path, files: dict[str, str]) -> None:
    """The weight files are the ones exported: each file gcm_edit.json lists has its recorded
    sha256, and no weight file it does not list is there. The logit check below runs a few
    prompts, so a change it does not reach (an embedding row, a late layer) passes it; this
    does not. A model.gguf the manifest does not list is the user's own conversion (checked
    by `--runtime llama.cpp`)."""
    for name, expected in sorted(files.items()):
        path = folder / name
        if Path(name).name != name or name in ("", ".", ".."):
            raise GcmEditError(f"verification failed for {folder}: gcm_edit.json lists {name!r}")
        if not path.is_file():
            raise GcmEditError(
                f"verification failed for {folder}: {name}, listed in gcm_edit.json, is missing"
            )
        if sha256_file(path) != expected:
            raise GcmEditError(
                f"verification failed for {folder}: {name} does not match its sha256 in "
                "gcm_edit.json (changed after the export)"
            )
    for path in sorted(folder.glob("*.safetensors")):
        if path.name not in files:
            raise GcmEditError(
                f"verification failed for {folder}: {path.name} is not in gcm_edit.json's "
                "files (the export did not write it)"
            )


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


class GgufVerification(BaseModel):
    """llama.cpp running the GGUF against transformers running the steered model, on the
    tokens llama.cpp itself chose greedily (teacher-forced on the transformers side)."""

    outtype: str
    n_prompts: int
    tokens: int
    greedy_identical: bool  # llama.cpp's greedy tokens are transformers' greedy tokens
    near_ties: int  # tokens it chose within `tolerance` of transformers' top log-probability
    off_greedy: int  # tokens it chose that transformers ranks lower by more than `tolerance`
    max_abs_logprob_diff: float  # |log p llama.cpp − log p transformers| of its tokens
    mean_abs_logprob_diff: float
    steering_effect: float  # mean |log p steered − log p base| on the same tokens
    differs_from_base: bool  # its greedy text differs from the base model's on some prompt
    tolerance: float = GGUF_TOLERANCE
    exact: bool  # f32: held to `tolerance`; other types: to the steering effect (see verify_gguf)

    def summary(self) -> str:
        """One line for the console, after `gcm-edit verify --runtime llama.cpp` or an export."""
        tokens = f"off transformers' greedy path at {self.off_greedy} of {self.tokens}"
        if not self.off_greedy:
            tokens = "identical to transformers'" if self.greedy_identical else "transformers'"
        return (
            f"{self.outtype} GGUF, greedy tokens {tokens} on {self.n_prompts} prompts "
            f"({self.near_ties} near-ties), max |Δlog p| "
            f"{self.max_abs_logprob_diff:.1e} against a steering effect of "
            f"{self.steering_effect:.2f} nats per token"
        )


def _logprobs(model, prompt: list[int], ids: list[int]) -> torch.Tensor:
    """Teacher-forced next-token log-probabilities after each prefix of `ids`: [len(ids), V]."""
    device = next(model.parameters()).device
    inputs = torch.tensor([prompt + ids], device=device)
    with torch.no_grad():
        logits = model(input_ids=inputs).logits[0, len(prompt) - 1 : len(prompt) - 1 + len(ids)]
    return logits.double().log_softmax(-1).cpu()


def verify_gguf(
    path: Path,
    outtype: str,
    base_model,
    plan: SteeringPlan,
    prompts: list[list[int]],
    greedy_tokens: int = GREEDY_TOKENS,
) -> GgufVerification:
    """Check a GGUF in llama.cpp (exact settings) against the hooked steered model; raise
    GcmEditError when it is not that model. Fails closed on NaN.

    f32 (EXACT_TYPES): every token llama.cpp picks is transformers' greedy pick, or within
    `GGUF_TOLERANCE` nats of it (a near-tie), and its log-probabilities agree to that
    tolerance. Every type: the runtime's error must be under 1/LOSSY_MARGIN of what the
    steering itself changes on the same tokens, and if transformers' steered text differs
    from the base model's, llama.cpp's must too: the edit survived the conversion."""
    llm = LlamaCpp(path, n_ctx=max(map(len, prompts)) + greedy_tokens + 8)
    runs = [llm.complete(prompt, greedy_tokens)[0] for prompt in prompts]
    paths = [[t.id for t in run] for run in runs]
    with plan.apply(base_model, next(base_model.parameters()).device):
        hooked = plain_runner.run_prompts(base_model, prompts, greedy_tokens)
        steered = [_logprobs(base_model, *pair) for pair in zip(prompts, paths, strict=True)]
    base = plain_runner.run_prompts(base_model, prompts, greedy_tokens)
    unsteered = [_logprobs(base_model, *pair) for pair in zip(prompts, paths, strict=True)]
    errors, effects, gaps, same, moved, moves = [], [], [], [], [], []
    for i, (run, ids) in enumerate(zip(runs, paths, strict=True)):
        rows = range(len(ids))
        chosen = steered[i][rows, ids]
        errors += (chosen - torch.tensor([t.logprob for t in run], dtype=torch.float64)).tolist()
        effects += (chosen - unsteered[i][rows, ids]).tolist()
        gaps += (steered[i].max(-1).values - chosen).tolist()
        same.append(hooked[f"greedy.{i}"].tolist()[: len(ids)] == ids)
        moves.append(hooked[f"greedy.{i}"].tolist() != base[f"greedy.{i}"].tolist())
        moved.append(base[f"greedy.{i}"].tolist()[: len(ids)] != ids)
    abs_errors = [abs(e) for e in errors]
    result = GgufVerification(
        outtype=outtype,
        n_prompts=len(prompts),
        tokens=len(errors),
        greedy_identical=all(same),
        near_ties=sum(0 < gap <= GGUF_TOLERANCE for gap in gaps),
        off_greedy=sum(gap > GGUF_TOLERANCE for gap in gaps),
        max_abs_logprob_diff=max(abs_errors, default=math.nan),
        mean_abs_logprob_diff=statistics.fmean(abs_errors) if errors else math.nan,
        steering_effect=statistics.fmean(abs(e) for e in effects) if effects else math.nan,
        differs_from_base=any(moved),
        exact=outtype in EXACT_TYPES,
    )
    problems = []
    if not all(map(math.isfinite, [result.max_abs_logprob_diff, result.steering_effect])):
        problems.append("its log-probabilities are NaN or inf (or it generated nothing)")
    elif result.exact and (result.off_greedy or result.max_abs_logprob_diff > GGUF_TOLERANCE):
        problems.append(
            f"max |Δlog p| {result.max_abs_logprob_diff:.2e}, {result.off_greedy} tokens off "
            f"transformers' greedy path (limit {GGUF_TOLERANCE:.0e} for both)"
        )
    elif result.mean_abs_logprob_diff * LOSSY_MARGIN > result.steering_effect:
        problems.append(
            f"its error (mean |Δlog p| {result.mean_abs_logprob_diff:.3g}) is over "
            f"1/{LOSSY_MARGIN:.0f} of the steering's effect ({result.steering_effect:.3g})"
        )
    if any(moves) and not result.differs_from_base:
        problems.append("its greedy text is the base model's: the steering did not survive")
    if problems:
        raise GcmEditError(f"llama.cpp verification failed for {path} ({outtype}): {problems[0]}")
    return result
