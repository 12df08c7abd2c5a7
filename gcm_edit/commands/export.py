"""`gcm-edit export`: run every stage, bake, write the folder atomically, verify, report."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from gcm_edit.cache import sha256_file, stable_hash
from gcm_edit.checkpoint.adapter import build_adapter
from gcm_edit.checkpoint.bake import bake, export_class
from gcm_edit.checkpoint.card import model_card
from gcm_edit.checkpoint.gguf import convert_to_gguf, find_converter
from gcm_edit.checkpoint.hub import check_token, push
from gcm_edit.checkpoint.manifest import (
    BaseModelInfo,
    DecodingInfo,
    ExportInfo,
    GgufInfo,
    HeadRow,
    Manifest,
    PairsInfo,
    PlanComparison,
    RecipeInfo,
    Sample,
    SteeringInfo,
)
from gcm_edit.checkpoint.verify import (
    VERIFY_PROMPTS,
    GgufVerification,
    Verification,
    verify_export,
    verify_gguf,
)
from gcm_edit.commands.compose import compose_concepts, composition_row
from gcm_edit.commands.distilled import DistilledStrength
from gcm_edit.commands.export_settings import ExportSettings
from gcm_edit.commands.heldout import dose_curve, evaluate_heldout
from gcm_edit.commands.learned import LearnedStrength
from gcm_edit.commands.run import Run
from gcm_edit.commands.steering_run import SteeringRun, reject_sharding
from gcm_edit.commands.strength import choose_strength
from gcm_edit.console import console
from gcm_edit.evaluation.answers import Evaluation
from gcm_edit.inputs.prompts import bare_prompts
from gcm_edit.inputs.recipe import load_recipe
from gcm_edit.model.architectures import window_limit
from gcm_edit.model.llamacpp import require_xllamacpp
from gcm_edit.output import check_output, invocation, staged_folder, weights_bytes
from gcm_edit.scoring.methods import METHODS
from gcm_edit.scoring.table import plot_heatmap, write_scores_csv
from gcm_edit.steering.plan import SteeringPlan
from gcm_edit.steering.vectors import HEAD_NORM
from gcm_edit.tables import print_tables
from gcm_edit.version import __version__

PUSH_WARNING = 10.0  # warn when a head is pushed this many times its own output norm
MEAN_DIFF = "mean-diff"  # the held-out row of the mean-difference plan a distilled edit beats


def comparison(
    metrics: dict[str, Evaluation], rows: list[tuple[str, SteeringPlan, float]]
) -> list[PlanComparison]:
    """Held-out figures of (name in `metrics`, plan, KL) rows: a learned plan ("steered")
    against its rival."""
    return [
        PlanComparison(
            plan=name,
            heads=len(plan.steered_heads),
            success=metrics[name].success,
            concept=metrics[name].concept,
            fluent=metrics[name].fluent,
            relevant=metrics[name].relevant,
            kl=kl,
        )
        for name, plan, kl in rows
    ]


def warn_overpush(plan: SteeringPlan, head_norm) -> None:
    """One line when a head is pushed far beyond its own output (the model will break)."""
    pushes = plan.pushes(head_norm)
    if pushes and max(pushes) > PUSH_WARNING:
        i = max(range(len(pushes)), key=pushes.__getitem__)
        layer, head = plan.heads[i]
        console.print(
            f"[yellow]warning:[/] α·δ is {pushes[i]:.0f}× the typical output norm of head "
            f"L{layer}.H{head} (α={plan.alpha}): expect broken text; try a smaller --alpha"
        )


def generation_config(run: Run):
    """Ship the decoding the model was measured with, so users reproduce the same behaviour."""
    from transformers import GenerationConfig

    return GenerationConfig(
        bos_token_id=run.tokenizer.bos_token_id,
        eos_token_id=run.tokenizer.eos_token_id,
        pad_token_id=run.tokenizer.pad_token_id,
        **run.decoding.generate_kwargs(),
    )


def write_checkpoint(run: SteeringRun, plan: SteeringPlan, scores, folder: Path) -> None:
    """Weights (or adapter), tokenizer, decoding, plan and scores into `folder`."""
    s: ExportSettings = run.settings
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
    verification = run.cached(
        "gguf-verification-{key}.json",
        "llama.cpp verification",
        stable_hash(
            __version__, sha256_file(path), run.model_ref.fingerprint(), plan.fingerprint(), prompts
        ),
        lambda: verify_gguf(path, outtype, run.model, plan, prompts),
        encode=GgufVerification.model_dump,
        decode=GgufVerification.model_validate,
        label="verify in llama.cpp",
    )
    return GgufInfo(outtype=outtype, bytes=path.stat().st_size, verification=verification)


def export(settings: ExportSettings) -> Path | None:
    """The export folder; None in the extra processes of a multi-device scoring run."""
    reject_sharding(settings)
    token = check_token(settings.push_to_hub) if settings.push_to_hub else None
    run = SteeringRun(settings)
    composed_files = [f for c in settings.compose for f in load_recipe(c).files()]
    out = check_output(
        settings.out or run.default_out(),
        settings.force,
        [*run.inputs(), *(("a composed recipe's file", f) for f in composed_files)],
        writer=run.is_rank_zero,
    )
    if settings.gguf:
        find_converter()
        require_xllamacpp()
    scores = run.scores(settings.positions, settings.method)
    if not run.is_rank_zero:
        return None
    strength = choose_strength(run)
    scores = run.scores(strength.positions, settings.method)  # --kl-budget may choose others
    collateral = None
    if strength.rank_by != "effect":
        collateral = run.collateral(strength.positions, settings.method, strength.intervention)
    plans: dict[str, SteeringPlan | None] = {"base": None}
    learned = distilled = None
    if settings.edit == "distilled":
        distilled = DistilledStrength.learn(run, strength)
        console.print(
            f"distilled edit: kept step {distilled.step} on {len(distilled.plan.steered_heads)} "
            f"heads from {len(distilled.teacher.examples)} teacher answers, KL target "
            f"{distilled.goal.kl_target:g}"
        )
        plans["steered"], plans[MEAN_DIFF] = distilled.plan, distilled.rival
    elif settings.learn_scales:
        learned = LearnedStrength.learn(run, strength, settings.kl_budget)
        console.print(
            f"learned scales: kept step {learned.step} ({len(learned.plan.steered_heads)} "
            f"heads) against the uniform plan's {len(learned.rival.steered_heads)} heads, "
            f"KL target {learned.goal.kl_target:.4g}"
        )
        plans["steered"], plans["uniform α"] = learned.plan, learned.rival
    else:
        plans["steered"] = strength.plan(run)
    composed = None
    if settings.compose:
        plans["alone"] = plans["steered"]
        plans["steered"], composed = compose_concepts(run, plans["alone"])
    plan = plans["steered"]
    metrics = evaluate_heldout(run, plans, settings.n_heldout)
    with run.stage("retention"):
        retention = run.retention(plan)
        rival = learned or distilled
        if rival is not None:
            kl_rival = run.retention(rival.rival).kl
    capability = run.capability(plan)
    doses = None
    if settings.format == "adapter" and settings.doses:
        doses = dose_curve(run, plan, metrics, retention, settings.doses)
    head_norm = run.deltas[HEAD_NORM]
    warn_overpush(plan, head_norm)
    limit = window_limit(run.config) if plan.heads else None
    if limit:
        console.print(
            f"[yellow]note:[/] {run.config.model_type} uses a {limit}-token sliding window that "
            f"Llama cannot express: the export equals the steered model up to {limit} tokens"
        )

    with staged_folder(out) as staging:
        with run.stage("bake + write"):
            write_checkpoint(run, plan, scores, staging)
        hashes = {path.name: sha256_file(path) for path in sorted(staging.iterdir())}
        prompts = bare_prompts(run.tokenizer, run.recipe.heldout[:VERIFY_PROMPTS])
        verification = run.cached(
            "verification-{key}.json",
            "verification",
            stable_hash(__version__, hashes, run.model_ref.fingerprint(), prompts),
            lambda: verify_export(staging, run.model, plan, prompts),
            encode=Verification.model_dump,
            decode=Verification.model_validate,
            label="verify",
        )
        gguf = None
        if settings.gguf:
            gguf = export_gguf(run, plan, staging, settings.gguf, prompts)
            hashes["model.gguf"] = sha256_file(staging / "model.gguf")
            questions = run.recipe.heldout[: settings.n_heldout]
            texts = run.answers(
                f"held-out answers ({gguf.label})", questions, None, gguf=staging / "model.gguf"
            )
            with run.stage("judging"):
                metrics[gguf.label] = run.judged(questions, texts)
        source = Path(run.model_ref.source)
        manifest = Manifest(
            gcm_edit_version=__version__,
            created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            command=invocation(),
            base_model=BaseModelInfo(
                name=run.model_ref.name,
                source=run.model_ref.source,
                fingerprint=run.model_ref.fingerprint(),
                architecture=run.config.model_type,
                hub_id=run.model_ref.hub_id,
            ),
            recipe=RecipeInfo(
                name=run.recipe.name,
                description=run.recipe.description,
                sha256=run.recipe.sha256(),
                directive=run.recipe.directive.model_dump() if run.recipe.directive else None,
                prompt_format=run.prompt_format,
                explicit_pairs=run.recipe.pairs is not None,
                judge=run.recipe.judge,
                fluency=run.recipe.fluency.model_dump(),
                require_relevance=run.recipe.require_relevance,
                heldout_size=metrics["base"].n,
            ),
            method=settings.method,
            export=ExportInfo(
                format=settings.format,
                export_class="PeftModel (LoRA on o_proj)"
                if settings.format == "adapter"
                else export_class(run.model, plan),
                base_weights_bytes=weights_bytes(source) if source.is_dir() else None,
                exact_up_to_tokens=limit,
                weights_bytes=weights_bytes(staging),
            ),
            steering=SteeringInfo(
                intervention="distilled" if distilled else strength.intervention,
                k_percent=strength.k_percent,
                n_heads_total=run.geometry.n_total,
                alpha=plan.alpha,
                positions=strength.positions,
                rank_by=strength.rank_by,
                heads=[
                    HeadRow(
                        **row,
                        score=float(scores[row["layer"], row["head"]]),
                        collateral=None
                        if collateral is None
                        else float(collateral[row["layer"], row["head"]]),
                    )
                    for row in plan.describe(head_norm)
                ],
            ),
            decoding=DecodingInfo(**run.decoding.generate_kwargs(), stop=list(run.decoding.stop)),
            pairs=PairsInfo(
                n_questions=run.pairs.n_questions,
                kept=len(run.pairs.pairs),
                contrast_adherence=run.pairs.contrast_adherence,
                original_clean=run.pairs.original_clean,
            ),
            selection=strength.selection,
            metrics=metrics,
            retention=retention,
            capability=capability,
            samples=[
                Sample(question=b["question"], base=b["answer"], steered=st["answer"])
                for b, st in zip(metrics["base"].answers, metrics["steered"].answers, strict=True)
            ],
            scale_learning=None
            if learned is None
            else learned.report(
                comparison(
                    metrics,
                    [("steered", plan, retention.kl), ("uniform α", learned.rival, kl_rival)],
                )
            ),
            distillation=None
            if distilled is None
            else distilled.report(
                comparison(
                    metrics,
                    [("steered", plan, retention.kl), (MEAN_DIFF, distilled.rival, kl_rival)],
                )
            ),
            composition=None
            if composed is None
            else [
                composition_row(run, plans["alone"], metrics),
                *(composition_row(*concept) for concept in composed),
            ],
            verification=verification,
            gguf=gguf,
            dose_curve=doses,
            timings_s={k: round(v, 2) for k, v in run.timings.items()},
            peak_rss_gb=run.peaks.peaks_gb,
            peak_rss_method=run.peaks.method,
            files={
                name: digest
                for name, digest in sorted(hashes.items())
                if name.endswith((".safetensors", ".gguf"))
            },
        )
        manifest.write(staging)
        (staging / "README.md").write_text(model_card(manifest))

    print_tables(*manifest.tables(), manifest.samples_table())
    console.print(
        f"verified: max |Δlogit| {verification.max_abs_logit_diff:.2e}, greedy text identical"
    )
    if gguf is not None:
        console.print(f"verified in llama.cpp: {gguf.verification.summary()}")
    console.print(f"[bold]exported[/] {out}")
    if settings.push_to_hub:
        with run.stage("push to hub"):
            url = push(settings.push_to_hub, out, token)
        console.print(f"[bold]uploaded[/] {url}")
    return out
