"""`gcm-edit export`: select heads → fit the edit → evaluate → write, verify and report."""

from __future__ import annotations

from pathlib import Path

from gcm_edit.checkpoint.card import model_card
from gcm_edit.checkpoint.gguf import find_converter
from gcm_edit.checkpoint.hub import check_token, push
from gcm_edit.checkpoint.manifest import Manifest
from gcm_edit.commands.export_manifest import build_manifest
from gcm_edit.commands.export_results import measure_export
from gcm_edit.commands.export_settings import ExportSettings
from gcm_edit.commands.export_write import write_export
from gcm_edit.commands.steering_run import SteeringRun
from gcm_edit.commands.strength import choose_strength
from gcm_edit.console import console
from gcm_edit.inputs.recipe_files import load_recipe
from gcm_edit.model.architectures import window_limit
from gcm_edit.model.llamacpp import require_xllamacpp
from gcm_edit.output import check_output, staged_folder
from gcm_edit.steering.plan import SteeringPlan
from gcm_edit.steering.vectors import HEAD_NORM
from gcm_edit.tables import print_tables

PUSH_WARNING = 10.0  # warn when a head is pushed this many times its own output norm


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


def window_note(run: SteeringRun, plan: SteeringPlan) -> int | None:
    """The sliding window a Llama export cannot express, said in one line when there is one."""
    limit = window_limit(run.config) if plan.heads else None
    if limit:
        console.print(
            f"[yellow]note:[/] {run.config.model_type} uses a {limit}-token sliding window that "
            f"Llama cannot express: the export equals the steered model up to {limit} tokens"
        )
    return limit


def report(manifest: Manifest, out: Path) -> None:
    print_tables(*manifest.tables(), manifest.samples_table())
    console.print(
        f"verified: max |Δlogit| {manifest.verification.max_abs_logit_diff:.2e}, "
        "greedy text identical"
    )
    if manifest.gguf is not None:
        console.print(f"verified in llama.cpp: {manifest.gguf.verification.summary()}")
    console.print(f"[bold]exported[/] {out}")


def export(settings: ExportSettings) -> Path | None:
    """The export folder; None in the extra processes of a multi-device scoring run."""
    s = settings
    token = check_token(s.push_to_hub) if s.push_to_hub else None
    run = SteeringRun(s)
    composed_files = [f for c in s.compose for f in load_recipe(c).files()]
    inputs = [*run.inputs(), *(("a composed recipe's file", f) for f in composed_files)]
    out = check_output(s.out or run.default_out(), s.force, inputs, writer=run.is_rank_zero)
    s.edit.check(run)
    if s.gguf:
        find_converter()
        require_xllamacpp()
    run.scores(s.positions, s.method)  # every process of a multi-device run scores
    if not run.is_rank_zero:
        return None
    # select: the start plan, as given or chosen on validation (--kl-budget may move δ)
    strength = choose_strength(run, s)
    scores = run.scores(strength.positions, s.method)
    collateral = None
    if strength.rank_by != "effect":
        collateral = run.collateral(strength.positions, s.method, strength.intervention)
    fitted = s.edit.fit(run, strength, s)  # fit: the edit kind's own plan
    results = measure_export(run, fitted, s)  # evaluate, held-out only
    warn_overpush(results.plan, run.deltas[HEAD_NORM])
    window = window_note(run, results.plan)
    with staged_folder(out) as staging:  # write
        written = write_export(run, results.plan, scores, staging, s, results.metrics)
        manifest = build_manifest(
            run, s, strength, fitted, results, written, staging, scores, collateral, window
        )
        manifest.write(staging)
        (staging / "README.md").write_text(model_card(manifest))
    report(manifest, out)
    if s.push_to_hub:
        with run.stage("push to hub"):
            url = push(s.push_to_hub, out, token)
        console.print(f"[bold]uploaded[/] {url}")
    return out
