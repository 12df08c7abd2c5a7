"""`gcm-edit eval`: judge any model folder (a steered export, the base, any HF model) on a recipe.

The model answers the recipe's questions with no directive and no hooks: what a user of the
checkpoint would get. Fluency perplexity and KL are measured against the reference model
(the base an export names in gcm_edit.json, or --base); answers are cached per model.
"""

from __future__ import annotations

from pathlib import Path

from gcm_edit.cache import read_json, write_json
from gcm_edit.evaluation.answers import Evaluation, judge_answers
from gcm_edit.commands.run import Run, console
from gcm_edit.commands.report import metrics_table, print_tables, retention_table, samples_table
from gcm_edit.evaluation.retention import measure_retention
from gcm_edit.commands.settings import EvalSettings
from gcm_edit.checkpoint.verify import recorded_base


def reference_name(settings: EvalSettings) -> str:
    if settings.base:
        return settings.base
    manifest = Path(settings.model) / "gcm_edit.json"
    return recorded_base(read_json(manifest)) if manifest.is_file() else settings.model


def evaluate_model(settings: EvalSettings) -> dict:
    run = Run(settings)
    reference = Run(settings.model_copy(update={"model": reference_name(settings)}))
    same = reference.model_ref.fingerprint() == run.model_ref.fingerprint()
    reference = run if same else reference
    questions = getattr(run.recipe, settings.split)[: settings.n_questions]
    answered = {"evaluated": run.answers(f"{settings.split} answers", questions, None)}
    if not same:
        answered["reference"] = reference.answers(
            f"{settings.split} answers (reference)", questions, None
        )
    base_model = reference.model
    with run.stage("judging"):
        metrics: dict[str, Evaluation] = {
            label: judge_answers(
                base_model, reference.tokenizer, run.recipe, run.judge, questions, texts
            )
            for label, texts in answered.items()
        }
    with run.stage("retention"):
        retention = measure_retention(base_model, reference.tokenizer, steered_model=run.model)
    tables = [
        metrics_table(
            f"{run.model_ref.name} on '{run.recipe.name}' ({settings.split}, "
            f"{len(questions)} questions, no directive); reference: {reference.model_ref.name}",
            metrics,
        ),
        retention_table(retention),
    ]
    if settings.samples and "reference" in metrics:
        tables.append(samples_table(metrics["reference"], metrics["evaluated"], settings.samples))
    print_tables(*tables)
    report = {
        "model": {"name": run.model_ref.name, "source": run.model_ref.source},
        "reference": {"name": reference.model_ref.name, "source": reference.model_ref.source},
        "recipe": {"name": run.recipe.name, "sha256": run.recipe.sha256()},
        "split": settings.split,
        "metrics": {label: ev.summary() for label, ev in metrics.items()},
        "retention": retention.to_json(),
        "answers": metrics["evaluated"].answers,
    }
    if settings.out:
        write_json(settings.out, report)
        console.print(f"[bold]wrote[/] {settings.out}")
    return report
