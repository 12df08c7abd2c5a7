"""`gcm-edit export`: run every stage, bake, write the folder atomically, verify, report."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from gcm_edit.version import __version__
from gcm_edit.checkpoint.adapter import build_adapter, folder_bytes
from gcm_edit.model.architectures import window_limit
from gcm_edit.checkpoint.bake import bake, export_class
from gcm_edit.cache import sha256_file, write_json
from gcm_edit.checkpoint.card import invocation, model_card
from gcm_edit.errors import GcmEditError
from gcm_edit.evaluation.answers import Evaluation, judge_answers
from gcm_edit.checkpoint.gguf import convert_to_gguf, find_converter
from gcm_edit.checkpoint.hub import check_token, push
from gcm_edit.scoring.methods import METHODS
from gcm_edit.output import check_output, staged_folder
from gcm_edit.commands.run import Run, console, reject_sharding
from gcm_edit.steering.plan import SteeringPlan
from gcm_edit.inputs.prompts import bare_prompts
from gcm_edit.commands.report import (
    comparison_table,
    composition_table,
    metrics_table,
    print_tables,
    retention_table,
    samples_table,
)
from gcm_edit.evaluation.retention import Retention, measure_retention
from gcm_edit.commands.learned import learned, learned_plan, objective, uniform_rival
from gcm_edit.scoring.table import plot_heatmap, write_scores_csv
from gcm_edit.commands.settings import ExportSettings
from gcm_edit.commands.candidates import choose_alpha_k, rows_table
from gcm_edit.checkpoint.verify import VERIFY_PROMPTS, verify_export


def output_dir(settings: ExportSettings, run: Run) -> Path:
    out = settings.out or Path("checkpoints") / f"{run.model_ref.slug}-{run.recipe.name}"
    return check_output(out, settings.force)


def evaluate_heldout(
    run: Run, plans: dict[str, SteeringPlan | None], n_heldout: int | None
) -> dict[str, Evaluation]:
    """Held-out answers (no directive) of each plan (None: the base model), judged."""
    questions = run.recipe.heldout[:n_heldout]
    answers = {
        name: run.answers(f"held-out answers ({name})", questions, plan)
        for name, plan in plans.items()
    }
    model = run.model  # loaded outside this stage's timer
    with run.stage("judging"):
        return {
            name: judge_answers(model, run.tokenizer, run.recipe, run.judge, questions, texts)
            for name, texts in answers.items()
        }


def learned_strength(
    run: Run, settings: ExportSettings, alpha: float
) -> tuple[SteeringPlan, SteeringPlan, dict]:
    """--learn-scales: the learned plan, its uniform-α rival (same number of heads), a report."""
    result = learned(run, settings, alpha)
    plan = learned_plan(run, result, alpha, settings.positions)
    rival, top, rows = uniform_rival(run, settings, len(plan.steered_heads))
    report = {
        "objective": vars(objective(settings, alpha)),
        "candidates": [list(h) for h in result.heads],
        "c": result.c,
        "s": result.s,
        "surviving": len(result.surviving),
        "history": result.history,
        "uniform": {"alpha": top["alpha"], "n_heads": len(rival.steered_heads), "validation": rows},
    }
    console.print(
        f"learned scales: {len(result.surviving)} of {len(result.heads)} candidate heads survive "
        f"the L1 term; rival: the top {len(rival.steered_heads)} heads at uniform α={top['alpha']}"
    )
    return plan, rival, report


def generation_config(run: Run):
    """Ship the decoding the model was measured with, so users reproduce the same behaviour."""
    from transformers import GenerationConfig

    return GenerationConfig(
        bos_token_id=run.tokenizer.bos_token_id,
        eos_token_id=run.tokenizer.eos_token_id,
        pad_token_id=run.tokenizer.pad_token_id,
        **run.decoding.generate_kwargs(),
    )


def composition_row(run: Run, alone: SteeringPlan, metrics: dict[str, Evaluation]) -> dict:
    """One concept's held-out success: base, its own plan alone, and the composed model."""
    return {
        "concept": run.recipe.name,
        "recipe_sha256": run.recipe.sha256(),
        "heads": [list(h) for h in alone.steered_heads],
        "alpha": alone.alpha,
        **{
            f"{name}_success": metrics[key].success_rate
            for name, key in (("base", "base"), ("alone", "alone"), ("composed", "steered"))
        },
    }


def compose_concepts(
    run: Run, settings: ExportSettings, first: SteeringPlan
) -> tuple[SteeringPlan, list[dict]]:
    """Plans for the further concepts (same settings, same loaded model), composed with the
    first; each further concept is judged on its own held-out prompts alone and composed."""
    if settings.learn_scales:
        raise GcmEditError("--learn-scales cannot be combined with several --concept (yet)")
    others = [
        Run(settings.model_copy(update={"concept": concept, "compose": []}), model=run.model)
        for concept in settings.compose
    ]
    alone = {}
    for other in others:
        other_alpha, other_k, _ = choose_strength(other, settings)
        alone[other.recipe.name] = other.plan(settings.positions, other_alpha, other_k)
    composed = SteeringPlan.compose([first, *alone.values()])
    rows = []
    for other in others:
        plans = {"base": None, "alone": alone[other.recipe.name], "steered": composed}
        rows.append(
            composition_row(
                other, plans["alone"], evaluate_heldout(other, plans, settings.n_heldout)
            )
        )
    return composed, rows


def comparison_rows(plans, metrics, retention, rival) -> list[dict]:
    """Learned scales vs the uniform-α rival, held-out: the numbers issue #7 asks for."""
    return [
        {
            "plan": name,
            "heads": len(plans[name].steered_heads),
            "success": metrics[name].success_rate,
            "concept": metrics[name].concept_rate,
            "fluent": metrics[name].fluent_rate,
            "kl": kl.kl,
        }
        for name, kl in (("steered", retention), ("uniform α", rival))
    ]


def choose_strength(run: Run, settings: ExportSettings) -> tuple[float, float, dict]:
    """α and k%: as given, or ("auto") the best on the validation split, never the held-out."""
    alphas = settings.auto_alphas if settings.alpha == "auto" else [settings.alpha]
    ks = settings.auto_ks if settings.k_percent == "auto" else [settings.k_percent]
    selection: dict = {"alpha": settings.alpha, "k_percent": settings.k_percent}
    if "auto" not in (settings.alpha, settings.k_percent):
        return settings.alpha, settings.k_percent, selection
    top, rows = choose_alpha_k(run, settings.positions, alphas, ks, settings.n_validation)
    selection |= {"chosen": {"alpha": top["alpha"], "k_percent": top["k_percent"]}}
    selection["validation"] = rows
    print_tables(rows_table(f"{run.recipe.name}: choosing on the validation split", rows))
    console.print(
        f"chosen on validation: α={top['alpha']}, k={top['k_percent']}% "
        f"(success {top['success']:.0%}, KL {top['kl']:.4f})"
    )
    return top["alpha"], top["k_percent"], selection


def build_manifest(
    run: Run,
    plan: SteeringPlan,
    scores,
    metrics: dict[str, Evaluation],
    retention: Retention,
    selection: dict,
    settings: ExportSettings,
) -> dict:
    recipe = run.recipe
    heads = [{**row, "score": float(scores[row["layer"], row["head"]])} for row in plan.describe()]
    return {
        "gcm_edit_version": __version__,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": invocation(),
        "base_model": {
            "name": run.model_ref.name,
            "source": run.model_ref.source,
            "fingerprint": run.model_ref.fingerprint(),
            "architecture": run.config.model_type,
        },
        "recipe": {
            "name": recipe.name,
            "description": recipe.description,
            "sha256": recipe.sha256(),
            "directive": recipe.directive.model_dump() if recipe.directive else None,
            "explicit_pairs": recipe.pairs is not None,
            "judge": recipe.judge,
            "fluency": recipe.fluency.model_dump(),
            "heldout_size": metrics["base"].n,
        },
        "method": settings.method,
        "export": {
            "format": settings.format,
            "class": "PeftModel (LoRA on o_proj)"
            if settings.format == "adapter"
            else export_class(run.model, plan),
            "base_weights_bytes": folder_bytes(Path(run.model_ref.source))
            if Path(run.model_ref.source).is_dir()
            else None,
            "exact_up_to_tokens": window_limit(run.config) if plan.heads else None,
        },
        "steering": {
            "intervention": settings.intervention,
            "k_percent": selection.get("chosen", selection)["k_percent"],
            "n_heads_total": run.geometry.n_total,
            "alpha": plan.alpha,
            "positions": settings.positions,
            "heads": heads,
        },
        "decoding": {"do_sample": False, **vars(run.decoding)},
        "pairs": {
            "n_questions": run.pairs.n_questions,
            "kept": len(run.pairs.pairs),
            "contrast_adherence": run.pairs.contrast_adherence,
            "original_clean": run.pairs.original_clean,
        },
        "selection": selection,
        "metrics": {name: ev.summary() for name, ev in metrics.items()},
        "retention": retention.to_json(),
        "samples": [
            {"question": b["question"], "base": b["answer"], "steered": s["answer"]}
            for b, s in zip(metrics["base"].answers, metrics["steered"].answers, strict=True)
        ],
    }


def export(settings: ExportSettings) -> Path:
    reject_sharding(settings)
    token = check_token(settings.push_to_hub) if settings.push_to_hub else None
    run = Run(settings)
    out = output_dir(settings, run)
    if settings.gguf:
        if settings.format == "adapter":
            raise GcmEditError("--gguf needs --format full (llama.cpp loads whole checkpoints)")
        find_converter()
    scores = run.scores(settings.positions)
    alpha, k_percent, selection = choose_strength(run, settings)
    plans: dict[str, SteeringPlan | None] = {"base": None}
    learning: dict | None = None
    composition: list[dict] | None = None
    if settings.learn_scales:
        plans["steered"], plans["uniform α"], learning = learned_strength(run, settings, alpha)
    else:
        plans["steered"] = run.plan(settings.positions, alpha, k_percent)
    if settings.compose:
        plans["alone"] = plans["steered"]
        plans["steered"], composition = compose_concepts(run, settings, plans["alone"])
    plan = plans["steered"]
    metrics = evaluate_heldout(run, plans, settings.n_heldout)
    with run.stage("retention"):
        retention = measure_retention(run.model, run.tokenizer, plan)
        if learning is not None:
            rival = measure_retention(run.model, run.tokenizer, plans["uniform α"])
            learning["comparison"] = comparison_rows(plans, metrics, retention, rival)
    manifest = build_manifest(run, plan, scores, metrics, retention, selection, settings)
    if learning is not None:
        manifest["scale_learning"] = learning
    if composition is not None:
        composition.insert(0, composition_row(run, plans["alone"], metrics))
        manifest["composition"] = composition
    if limit := manifest["export"]["exact_up_to_tokens"]:
        console.print(
            f"[yellow]note:[/] {run.config.model_type} uses a {limit}-token sliding window that "
            f"Llama cannot express: the export equals the steered model up to {limit} tokens"
        )

    with staged_folder(out) as staging:
        with run.stage("bake + write"):
            if settings.format == "adapter":
                build_adapter(run.model, plan).save_pretrained(staging)
                generation_config(run).save_pretrained(staging)
            else:
                baked = bake(run.model, plan)
                baked.generation_config = generation_config(run)
                baked.save_pretrained(staging)
                del baked
            run.tokenizer.save_pretrained(staging)
            plan.save(staging)
            write_scores_csv(scores, staging / "scores.csv")
            plot_heatmap(
                scores,
                plan.steered_heads,
                staging / "scores.png",
                f"{run.model_ref.slug}: '{run.recipe.name}', {settings.method}\n"
                "(selected heads boxed)",
                METHODS[settings.method].label,
            )
        manifest["export"]["weights_bytes"] = folder_bytes(staging)
        with run.stage("verify"):
            prompts = bare_prompts(run.tokenizer, run.recipe.heldout[:VERIFY_PROMPTS])
            verification = verify_export(staging, run.model, plan, prompts)
        manifest["verification"] = verification.to_json()
        if settings.gguf:
            with run.stage("gguf"):
                convert_to_gguf(staging, staging / "model.gguf")
        manifest["timings_s"] = {k: round(v, 2) for k, v in run.timings.items()}
        manifest["files"] = {
            p.name: sha256_file(p)
            for p in sorted(staging.iterdir())
            if p.suffix in (".safetensors", ".gguf")
        }
        write_json(staging / "gcm_edit.json", manifest)
        (staging / "README.md").write_text(model_card(manifest, metrics))

    print_tables(
        metrics_table(
            f"{run.recipe.name}: held-out questions, no directive "
            f"({len(plan.steered_heads)} heads, {settings.intervention}, α={plan.alpha})",
            metrics,
        ),
        retention_table(retention),
        *([comparison_table(learning["comparison"])] if learning else []),
        *([composition_table(composition)] if composition else []),
        samples_table(metrics["base"], metrics["steered"]),
    )
    console.print(
        f"verified: max |Δlogit| {verification.max_abs_logit_diff:.2e}, greedy text identical"
    )
    console.print(f"[bold]exported[/] {out}")
    if settings.push_to_hub:
        with run.stage("push to hub"):
            url = push(settings.push_to_hub, out, token)
        console.print(f"[bold]uploaded[/] {url}")
    return out
