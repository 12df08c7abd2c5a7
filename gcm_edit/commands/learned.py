"""`export --learn-scales`: the plan from learned per-head scales, and its uniform-α rival.

The learned scales are cached in the run folder like every stage. The comparison plan steers
the same number of heads (top by score) with one α, chosen on the validation split.
"""

from __future__ import annotations

import torch

from gcm_edit.version import __version__
from gcm_edit.cache import read_json, stable_hash, write_json
from gcm_edit.errors import GcmEditError
from gcm_edit.commands.run import Run
from gcm_edit.steering.plan import SteeringPlan, select_heads
from gcm_edit.steering.scales import LearnedScales, ScaleObjective, learn_scales
from gcm_edit.commands.settings import ExportSettings
from gcm_edit.commands.candidates import choose_alpha_k


def objective(settings: ExportSettings, alpha: float) -> ScaleObjective:
    return ScaleObjective(
        alpha=alpha,
        lambda_f=settings.lambda_f,
        lambda_m=settings.lambda_m,
        lr=settings.scale_lr,
        steps=settings.scale_steps,
        learn_head_scale=settings.learn_head_scale,
        seed=settings.seed,
    )


def learned(run: Run, settings: ExportSettings, alpha: float) -> LearnedScales:
    positions = settings.positions
    candidates = select_heads(run.scores(positions), settings.scale_candidates)
    goal = objective(settings, alpha)
    key = stable_hash("scales", __version__, run.scores_path(positions).name, candidates, goal)
    path = run.dir / f"scales-{key}.json"
    if path.is_file():
        with run.stage("learned scales", cached=True):
            data = read_json(path)
            return LearnedScales([tuple(h) for h in data.pop("heads")], **data)
    deltas = run.deltas[positions]
    vectors = torch.stack([deltas[layer, head] for layer, head in candidates])
    pairs, model = run.pairs.pairs, run.model
    with run.stage("learned scales"):
        result = learn_scales(
            model, run.tokenizer, pairs, candidates, vectors, goal, settings.batch_size
        )
    write_json(path, vars(result))
    return result


def learned_plan(run: Run, result: LearnedScales, alpha: float, positions: str) -> SteeringPlan:
    """Surviving heads only: c ≠ 0 → additive (scale c), s ≠ 1 → head scaling."""
    if not result.surviving:
        raise GcmEditError(
            "the L1 term pruned every candidate head; lower --lambda-m or raise --alpha"
        )
    deltas = run.deltas[positions]
    added = [i for i in result.surviving if result.c[i] != 0]
    scaled = [i for i in result.surviving if result.s and result.s[i] != 1]
    vectors = [deltas[result.heads[i]] for i in added]
    return SteeringPlan(
        run.geometry,
        [result.heads[i] for i in added],
        torch.stack(vectors) if vectors else torch.zeros(0, run.geometry.head_dim),
        alpha,
        [result.c[i] for i in added],
        [result.heads[i] for i in scaled],
        [result.s[i] for i in scaled],
    )


def uniform_rival(
    run: Run, settings: ExportSettings, n_heads: int
) -> tuple[SteeringPlan, dict, list[dict]]:
    """The best uniform-α plan (on validation) steering the top `n_heads` heads."""
    k = 100.0 * n_heads / run.geometry.n_total
    top, rows = choose_alpha_k(
        run, settings.positions, settings.auto_alphas, [k], settings.n_validation
    )
    return run.plan(settings.positions, top["alpha"], k), top, rows
