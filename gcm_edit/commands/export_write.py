"""Writing an export: weights (or adapter), tokenizer, decoding, plan and scores into the
staged folder, then its verification in transformers (and llama.cpp with --gguf)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gcm_edit.cache import sha256_file
from gcm_edit.checkpoint.adapter import build_adapter
from gcm_edit.checkpoint.bake import bake
from gcm_edit.checkpoint.gguf import convert_to_gguf
from gcm_edit.checkpoint.manifest import GgufInfo
from gcm_edit.checkpoint.verify import (
    VERIFY_PROMPTS,
    GgufVerification,
    Verification,
    verify_export,
    verify_gguf,
)
from gcm_edit.commands.run import Run
from gcm_edit.commands.steering_run import SteeringRun
from gcm_edit.evaluation.answers import Evaluation
from gcm_edit.inputs.prompts import bare_prompts
from gcm_edit.inputs.recipe_files import RECIPE_FILE, recipe_yaml
from gcm_edit.keys import StageConfig
from gcm_edit.scoring.methods import METHODS
from gcm_edit.scoring.table import plot_heatmap, write_scores_csv
from gcm_edit.steering.plan import SteeringPlan

if TYPE_CHECKING:
    from gcm_edit.commands.export_settings import ExportSettings


class VerificationStage(StageConfig):
    """The written files checked against the hooked model on these prompts."""

    files: dict[str, str]  # sha256 per file of the folder
    model: str
    prompts: list[list[int]]
    runtime: str  # transformers, or llama.cpp with the GGUF's type


@dataclass
class Written:
    hashes: dict[str, str]  # sha256 of every file written
    verification: Verification
    gguf: GgufInfo | None


def generation_config(run: Run):
    """Ship the decoding the model was measured with, so users reproduce the same behaviour."""
    from transformers import GenerationConfig

    return GenerationConfig(
        bos_token_id=run.tokenizer.bos_token_id,
        eos_token_id=run.tokenizer.eos_token_id,
        pad_token_id=run.tokenizer.pad_token_id,
        **run.decoding.generate_kwargs(),
    )


def write_checkpoint(
    run: SteeringRun, plan: SteeringPlan, scores, folder: Path, s: ExportSettings
) -> None:
    """Weights (or adapter), tokenizer, decoding, plan, scores and the recipe into `folder`."""
    if s.format == "adapter":
        build_adapter(run.model, plan).save_pretrained(folder)
        generation_config(run).save_pretrained(folder)
    else:
        baked = bake(run.model, plan)
        baked.generation_config = generation_config(run)
        baked.save_pretrained(folder)
        del baked
    run.tokenizer.save_pretrained(folder)
    plan.save(folder)
    (folder / RECIPE_FILE).write_text(recipe_yaml(run.recipe), encoding="utf-8")
    write_scores_csv(scores, folder / "scores.csv")
    plot_heatmap(
        scores,
        plan.steered_heads,
        folder / "scores.png",
        f"{run.model_ref.slug}: '{run.recipe.name}', {s.method}\n(selected heads boxed)",
        METHODS[s.method].label,
    )


def export_gguf(
    run: SteeringRun, plan: SteeringPlan, staging: Path, outtype: str, prompts: list[list[int]]
) -> GgufInfo:
    """`model.gguf` converted from the staged folder and checked in llama.cpp."""
    path = staging / "model.gguf"
    with run.stage(f"gguf ({outtype})"):
        convert_to_gguf(staging, path, outtype)
    stage = VerificationStage(
        files={path.name: sha256_file(path)},
        model=run.model_ref.fingerprint(),
        prompts=prompts,
        runtime=f"llama.cpp {plan.fingerprint()}",
    )
    verification = run.cached(
        "gguf-verification-{key}.json",
        "llama.cpp verification",
        stage,
        lambda: verify_gguf(path, outtype, run.model, plan, prompts),
        encode=GgufVerification.model_dump,
        decode=GgufVerification.model_validate,
        label="verify in llama.cpp",
    )
    return GgufInfo(outtype=outtype, bytes=path.stat().st_size, verification=verification)


def write_export(
    run: SteeringRun,
    plan: SteeringPlan,
    scores,
    staging: Path,
    s: ExportSettings,
    metrics: dict[str, Evaluation],
) -> Written:
    """The folder written and verified; with --gguf, its GGUF judged on the held-out
    questions too (a row of `metrics`)."""
    with run.stage("bake + write"):
        write_checkpoint(run, plan, scores, staging, s)
    hashes = {path.name: sha256_file(path) for path in sorted(staging.iterdir())}
    prompts = bare_prompts(run.tokenizer, run.recipe.heldout[:VERIFY_PROMPTS])
    stage = VerificationStage(
        files=hashes, model=run.model_ref.fingerprint(), prompts=prompts, runtime="transformers"
    )
    verification = run.cached(
        "verification-{key}.json",
        "verification",
        stage,
        lambda: verify_export(staging, run.model, plan, prompts),
        encode=Verification.model_dump,
        decode=Verification.model_validate,
        label="verify",
    )
    gguf = None
    if s.gguf:
        gguf = export_gguf(run, plan, staging, s.gguf, prompts)
        hashes["model.gguf"] = sha256_file(staging / "model.gguf")
        questions = run.recipe.heldout[: s.n_heldout]
        texts = run.answers(
            f"held-out answers ({gguf.label})", questions, None, gguf=staging / "model.gguf"
        )
        with run.stage("judging"):
            metrics[gguf.label] = run.judged(questions, texts)
    return Written(hashes, verification, gguf)
