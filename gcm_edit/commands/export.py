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
    CompositionRow,
    DecodingInfo,
    DoseRow,
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
from gcm_edit.commands.distilled import DistilledStrength
from gcm_edit.commands.learned import LearnedStrength
from gcm_edit.commands.run import Run
from gcm_edit.commands.settings import ExportSettings
from gcm_edit.commands.steering_run import SteeringRun, reject_sharding
from gcm_edit.commands.strength import choose_strength
from gcm_edit.console import console
from gcm_edit.errors import GcmEditError
from gcm_edit.evaluation.answers import PROMPTED, Evaluation
from gcm_edit.evaluation.retention import Retention
from gcm_edit.inputs.prompts import bare_prompts
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


def reject_conflicts(settings: ExportSettings) -> None:
    """Options that cannot all hold, refused in one line before any work."""
    if settings.edit != "distilled":
        return
    clash = [
        flag
        for flag, given in (
            ("--learn-scales", settings.learn_scales),
            ("--intervention " + settings.intervention, settings.intervention != "additive"),
            ("--concept (several)", bool(settings.compose)),
        )
        if given
    ]
    if clash:
        raise GcmEditError(
            f"--edit distilled cannot be combined with {clash[0]}: the distilled edit learns "
            "additive vectors and maps on the top-k% heads; use --edit mean-diff for that "
            "option"
        )


def evaluate_heldout(
    run: Run,
    plans: dict[str, SteeringPlan | None],
    n_heldout: int | None,
    prompting_reference: bool = True,
) -> dict[str, Evaluation]:
    """Held-out answers (no directive) of each plan (None: the base model), judged; plus the
    prompting reference, the base model asked with the recipe's contrast directive (the
    baseline steering has to beat; recipes of explicit pairs have no directive, so none)."""
    questions = run.recipe.heldout[:n_heldout]
    answers = {
        name: run.answers(f"held-out answers ({name})", questions, plan)
        for name, plan in plans.items()
    }
    if prompting_reference and run.recipe.directive is not None:
        answers[PROMPTED] = run.answers(
            f"held-out answers ({PROMPTED})", questions, None, directive=run.recipe.directive
        )
    _ = run.model  # loaded outside the judging timer
    with run.stage("judging"):
        return {name: run.judged(questions, texts) for name, texts in answers.items()}


def composition_row(
    run: Run, alone: SteeringPlan, metrics: dict[str, Evaluation], given_up: list = ()
) -> CompositionRow:
    """One concept's held-out success: base, its own plan alone, and the composed model;
    `given_up`: the heads its own ranking wanted that an earlier concept already steers."""
    return CompositionRow(
        concept=run.recipe.name,
        recipe_sha256=run.recipe.sha256(),
        heads=[list(h) for h in alone.steered_heads],
        given_up=[list(h) for h in given_up],
        alpha=alone.alpha,
        base_success=metrics["base"].success,
        alone_success=metrics["alone"].success,
        composed_success=metrics["steered"].success,
    )


def compose_concepts(
    run: SteeringRun, first: SteeringPlan
) -> tuple[SteeringPlan, list[tuple[Run, SteeringPlan, dict[str, Evaluation], list]]]:
    """Plans for the further concepts (same settings, same loaded model), composed with the
    first; each further concept is judged on its own held-out questions alone and composed.

    With --compose-disjoint (default) each concept takes the best heads no earlier concept
    steers: two concepts pushing the same head's output is where they interfere most."""
    s: ExportSettings = run.settings
    if s.learn_scales:
        raise GcmEditError("--learn-scales cannot be combined with several --concept (yet)")
    others = [
        SteeringRun(s.model_copy(update={"concept": concept, "compose": []}), model=run.model)
        for concept in s.compose
    ]
    alone, given_up, taken = [], [], set(first.steered_heads)
    for other in others:
        strength = choose_strength(other)
        wanted = strength.plan(other).steered_heads
        exclude = frozenset(taken) if s.compose_disjoint else frozenset()
        plan = strength.plan(other, exclude)
        given_up.append([h for h in wanted if h in taken and h not in plan.steered_heads])
        taken |= set(plan.steered_heads)
        alone.append(plan)
    composed = SteeringPlan.compose([first, *alone])
    judged = []
    for other, plan, lost in zip(others, alone, given_up, strict=True):
        plans = {"base": None, "alone": plan, "steered": composed}
        metrics = evaluate_heldout(other, plans, s.n_heldout, prompting_reference=False)
        judged.append((other, plan, metrics, lost))
    return composed, judged


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


def dose_curve(
    run: SteeringRun,
    plan: SteeringPlan,
    metrics: dict[str, Evaluation],
    retention: Retention,
    doses: list[float],
) -> list[DoseRow]:
    """Held-out success and KL of the plan at each dose (what PEFT's LoRA scale sets on the
    adapter: tests/checkpoint/test_adapter.py checks the two are the same model), with dose 0
    (the base) and 1 (the export) taken from the figures already measured."""
    questions = run.recipe.heldout[: run.settings.n_heldout]
    measured = {0.0: (metrics["base"], None), 1.0: (metrics["steered"], retention)}
    for dose in sorted(set(doses) - set(measured)):
        dosed = plan.dosed(dose)
        texts = run.answers(f"held-out answers (dose {dose:g})", questions, dosed)
        with run.stage("judging"):
            judged = run.judged(questions, texts)
        with run.stage("retention"):
            measured[dose] = (judged, run.retention(dosed))
    return [
        DoseRow(
            dose=dose,
            success=ev.success,
            concept=ev.concept,
            fluent=ev.fluent,
            relevant=ev.relevant,
            kl=0.0 if kept is None else kept.kl,
            neutral_ppl_ratio=1.0
            if kept is None
            else kept.neutral_ppl_steered / kept.neutral_ppl_base,
        )
        for dose, (ev, kept) in sorted(measured.items())
    ]


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
    reject_conflicts(settings)
    token = check_token(settings.push_to_hub) if settings.push_to_hub else None
    run = SteeringRun(settings)
    out = check_output(
        settings.out or run.default_out(),
        settings.force,
        run.model_ref.source,
        writer=run.is_rank_zero,
    )
    if settings.gguf:
        if settings.format == "adapter":
            raise GcmEditError("--gguf needs --format full (llama.cpp loads whole checkpoints)")
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
