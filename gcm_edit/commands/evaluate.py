"""`gcm-edit eval`: judge any model folder (a steered export, the base, any HF model) on a recipe.

The model answers the recipe's questions with no directive and no hooks: what a user of the
checkpoint would get. Fluency perplexity, relevance and KL are measured against the reference
model (the base an export names in gcm_edit.json, or --base), which also answers the
questions bare and with the recipe's directive (the prompting reference) and the factual
questions (capability retention). Answers are cached per model. With `--runtime llama.cpp`
the export's model.gguf answers, in llama.cpp, under the same decoding.
"""

from __future__ import annotations

from pathlib import Path

from gcm_edit.checkpoint.gguf import gguf_type
from gcm_edit.checkpoint.manifest import MANIFEST_FILE, Manifest
from gcm_edit.checkpoint.reports import EvalReport, ModelInfo, RecipeRef
from gcm_edit.commands.run import Run
from gcm_edit.commands.settings import EvalSettings
from gcm_edit.console import console
from gcm_edit.errors import GcmEditError
from gcm_edit.evaluation.answers import PROMPTED, metrics_table
from gcm_edit.model.llamacpp import require_xllamacpp
from gcm_edit.output import check_output_file
from gcm_edit.tables import Column, ResultTable, print_tables


def reference_name(settings: EvalSettings) -> str:
    if settings.base:
        return settings.base
    folder = Path(settings.model)
    if (folder / MANIFEST_FILE).is_file():
        return Manifest.read(folder).base_model.locate()
    return settings.model


def as_exported(settings: EvalSettings) -> EvalSettings:
    """An export made through the recipe's base_prompt is asked that way again (its stop
    strings included), not through the template it carries for other tools."""
    folder = Path(settings.model)
    exported = settings.prompt_format == "auto" and (folder / MANIFEST_FILE).is_file()
    if exported and Manifest.read(folder).recipe.prompt_format == "base":
        return settings.model_copy(update={"prompt_format": "base"})
    return settings


def served_gguf(settings: EvalSettings) -> Path | None:
    """With --runtime llama.cpp, the folder's model.gguf (checked before any model loads)."""
    if settings.runtime != "llama.cpp":
        return None
    gguf = Path(settings.model) / "model.gguf"
    if not gguf.is_file():
        raise GcmEditError(
            f"--runtime llama.cpp evaluates MODEL/model.gguf, and {gguf} does not exist: "
            "export with --gguf TYPE"
        )
    require_xllamacpp()
    return gguf


def evaluate_model(settings: EvalSettings) -> EvalReport:
    settings = as_exported(settings)
    gguf = served_gguf(settings)
    run = Run(settings)
    if settings.out:
        check_output_file(settings.out, run.inputs(), settings.force)
    reference = Run(settings.model_copy(update={"model": reference_name(settings)}))
    same = reference.model_ref.fingerprint() == run.model_ref.fingerprint()
    reference = run if same else reference
    questions = getattr(run.recipe, settings.split)[: settings.n_questions]
    answered = {"evaluated": run.answers(f"{settings.split} answers", questions, None, gguf=gguf)}
    if not same:
        answered["reference"] = reference.answers(
            f"{settings.split} answers (reference)", questions, None
        )
    if run.recipe.directive is not None:
        answered[PROMPTED] = reference.answers(
            f"{settings.split} answers ({PROMPTED} reference)",
            questions,
            None,
            directive=run.recipe.directive,
        )
    _ = reference.model  # loaded outside the judging timer
    with run.stage("judging"):
        metrics = {
            label: run.judged(questions, texts, reference) for label, texts in answered.items()
        }
    retention = None  # llama.cpp returns no full next-token distributions to take a KL of
    if gguf is None:
        with run.stage("retention"):
            retention = run.retention(base=reference)
    capability = run.capability(None, base=reference, gguf=gguf)
    served = "" if gguf is None else f" in llama.cpp ({gguf_type(gguf)})"
    tables = [
        metrics_table(
            f"{run.model_ref.name}{served} on '{run.recipe.name}' ({settings.split}, "
            f"{len(questions)} questions, no directive); reference: {reference.model_ref.name}",
            metrics,
        ),
        *([] if retention is None else [retention.table()]),
        capability.table(),
    ]
    if settings.samples and "reference" in metrics:
        pairs = zip(metrics["reference"].answers, metrics["evaluated"].answers, strict=True)
        columns = [
            Column("question", lambda pair: pair[0]["question"]),
            Column("reference", lambda pair: pair[0]["answer"]),
            Column("evaluated", lambda pair: pair[1]["answer"]),
        ]
        samples = list(pairs)[: settings.samples]
        tables.append(ResultTable("Sample answers", columns, samples, prose=True))
    print_tables(*tables)
    report = EvalReport(
        model=ModelInfo(name=run.model_ref.name, source=run.model_ref.source),
        reference=ModelInfo(name=reference.model_ref.name, source=reference.model_ref.source),
        recipe=RecipeRef(
            name=run.recipe.name, sha256=run.recipe.sha256(), prompt_format=run.prompt_format
        ),
        judge=run.judge_name,
        split=settings.split,
        runtime=settings.runtime if gguf is None else f"llama.cpp ({gguf_type(gguf)})",
        metrics=metrics,
        retention=retention,
        capability=capability,
        answers=metrics["evaluated"].answers,
    )
    if settings.out:
        report.write(settings.out)
        console.print(f"[bold]wrote[/] {settings.out}")
    return report
