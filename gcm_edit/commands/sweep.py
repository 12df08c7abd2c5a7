"""`gcm-edit sweep`: is causal selection better, and what does each point cost?

Every (method, ranking, edit, k%, α) plan is measured on the validation split; "all" steers
every head; `--learn-scales` adds learned scales started from the best attribution plan.
Pairs, scores and answers come from the run cache, so re-running or widening a grid only
generates what is new. Writes sweep.csv/sweep.png (success against k%), pareto.csv/pareto.png
(success against KL, the non-dominated plans marked, base and prompting as references) and
report.md.
"""

from __future__ import annotations

from pathlib import Path

from gcm_edit.checkpoint.manifest import Selection
from gcm_edit.commands.candidates import measure
from gcm_edit.commands.steering_run import SteeringRun
from gcm_edit.commands.strength import Strength
from gcm_edit.commands.sweep_settings import SweepSettings
from gcm_edit.console import console
from gcm_edit.evaluation.answers import PROMPTED
from gcm_edit.evaluation.plan_results import (
    PlanResult,
    best,
    frontier_table,
    on_frontier,
    results_table,
    write_csv,
)
from gcm_edit.output import check_output, staged_folder
from gcm_edit.scoring.methods import METHODS
from gcm_edit.tables import Column, ResultTable, print_tables

REFERENCES = ("base", "all")  # drawn as lines, not as a curve over k


def series(row: PlanResult) -> str:
    """The curve a row belongs to: its method, ranking and edit."""
    if row.method.startswith("learned"):
        return "learned scales"
    name = row.method
    if row.rank_by != "effect":
        name += f" / {row.rank_by}"
    if row.intervention != "additive" and row.method != "base":
        name += f" / {row.intervention}"
    return name


def best_by_k(rows: list[PlanResult], name: str) -> dict[float, PlanResult]:
    """For one series, the best row (over α) at each k%."""
    mine = [r for r in rows if series(r) == name]
    return {
        k: best([r for r in mine if r.k_percent == k]) for k in sorted({r.k_percent for r in mine})
    }


def curves(rows: list[PlanResult]) -> list[str]:
    """The sparse series over k% (references and learned points apart)."""
    names = (series(r) for r in rows if r.method not in REFERENCES)
    return [name for name in dict.fromkeys(names) if not name.startswith("learned")]


def sparse_ks(rows: list[PlanResult]) -> list[float]:
    return sorted({r.k_percent for r in rows if r.method not in REFERENCES})


def plot_sweep(rows: list[PlanResult], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for method in curves(rows):
        points = best_by_k(rows, method)
        ks, rates = list(points), [p.success for p in points.values()]
        ax.errorbar(
            ks,
            [r.rate for r in rates],
            yerr=[[r.rate - r.low for r in rates], [r.high - r.rate for r in rates]],
            marker="o",
            capsize=3,
            label=method,
        )
    for method, style in (("all", "--"), ("base", ":")):
        if any(r.method == method for r in rows):
            top = best([r for r in rows if r.method == method])
            ax.axhline(
                top.success.rate,
                ls=style,
                color="gray",
                label=f"{method} heads" if method == "all" else "base model",
            )
    ax.set_xscale("log")
    ks = sparse_ks(rows)
    ax.set_xticks(ks, [f"{k:g}" for k in ks])
    ax.minorticks_off()
    ax.set_xlabel("heads steered (% of all, best α per point)")
    ax.set_ylabel("validation success, 95% interval\n(concept ∧ fluent ∧ relevant)")
    ax.set_ylim(-0.03, 1.03)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def by_k_table(rows: list[PlanResult]) -> ResultTable:
    """Methods × k%: the best α's success and KL in each cell."""

    def cell(k: float):
        def value(method: str) -> str:
            r = best_by_k(rows, method).get(k)
            return "–" if r is None else f"{r.success} (α={r.alpha:g}, KL {r.kl:.3f})"

        return value

    methods = curves(rows)
    columns = [Column("method", str)] + [Column(f"k={k:g}%", cell(k)) for k in sparse_ks(rows)]
    title = "Best α per cell: success (concept ∧ fluent ∧ relevant) [95% interval], KL"
    return ResultTable(title, columns, methods)


def markdown_report(rows: list[PlanResult], prompted: PlanResult | None, title: str) -> str:
    lines = [f"# {title}", "", by_k_table(rows).markdown(), ""]
    for method, name in (("all", "All heads"), ("base", "Base model")):
        if any(r.method == method for r in rows):
            top = best([r for r in rows if r.method == method])
            alpha = f" at α={top.alpha:g}" if method == "all" else ""
            lines.append(f"{name}: success {top.success}{alpha}, KL {top.kl:.3f}.")
    if prompted is not None:
        lines.append(f"Prompting reference (the directive, no steering): {prompted.success}.")
    overall = best([r for r in rows if r.method not in REFERENCES] or rows)
    lines += [
        "",
        f"Best sparse plan: **{series(overall)}**, k={overall.k_percent}%, "
        f"α={overall.alpha} → success {overall.success} "
        f"({overall.n_heads} heads, KL {overall.kl:.3f}).",
        "",
        "## The frontier: no other plan has at least this success at no more KL",
        "",
        frontier_table(title, rows).markdown(),
        "",
        "## Every measurement",
        "",
        results_table(title, rows).markdown(),
    ]
    return "\n".join(lines) + "\n"


def plot_pareto(
    rows: list[PlanResult], prompted: PlanResult | None, path: Path, title: str
) -> None:
    """Success against KL, one marker per series, the non-dominated plans joined."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.5))
    markers = "osD^v<>pPX*h"
    for i, name in enumerate(dict.fromkeys(series(r) for r in rows)):
        points = [r for r in rows if series(r) == name]
        ax.scatter(
            [r.kl for r in points],
            [r.success.rate for r in points],
            marker=markers[i % len(markers)],
            label=name if name != "base" else "base model",
            alpha=0.8,
        )
    front = sorted(
        (r for r, keep in zip(rows, on_frontier(rows), strict=True) if keep), key=lambda r: r.kl
    )
    ax.step(
        [r.kl for r in front],
        [r.success.rate for r in front],
        where="post",
        color="black",
        lw=1,
        label="frontier (non-dominated)",
    )
    if prompted is not None:
        ax.axhline(prompted.success.rate, ls="--", color="gray", label="prompting reference")
    ax.set_xscale("symlog", linthresh=0.01)  # linear near 0 (the base model), log beyond
    ax.set_xlim(left=0)
    ax.set_xlabel("KL(base ‖ steered) per neutral prompt token (nats)")
    ax.set_ylabel("validation success\n(concept ∧ fluent ∧ relevant)")
    ax.set_ylim(-0.03, 1.03)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def grid(run: SteeringRun, settings: SweepSettings, questions: list[str]) -> list[PlanResult]:
    """One row per (method, ranking, edit, k%, α) on the grid."""
    rows = []
    for method in settings.methods:
        selection = "attribution" if method == "all" else method  # "all": any ranking, k = 100%
        # effect per KL needs a score that is an effect of δ (not a probe accuracy, not noise)
        per_kl = method != "all" and METHODS[method].uses_deltas
        rank_bys = settings.rankings if per_kl else ["effect"]
        for rank_by in rank_bys:
            for intervention in settings.interventions:
                for k in [100.0] if method == "all" else settings.ks:
                    for alpha in settings.alphas:
                        plan = run.plan(
                            settings.positions, alpha, k, selection, intervention, rank_by
                        )
                        keys = dict(positions=settings.positions, rank_by=rank_by, alpha=alpha)
                        keys |= dict(intervention=intervention, k_percent=k)
                        rows.append(measure(run, questions, plan, method, **keys))
    return rows


def learned_rows(
    run: SteeringRun, rows: list[PlanResult], settings: SweepSettings
) -> list[PlanResult]:
    """Learned scales from the best additive attribution plan, at no more KL: each
    snapshot's validation row (commands/edits/scales.py)."""
    start = [r for r in rows if r.method == "attribution" and r.intervention == "additive"]
    top = best(start)
    strength = Strength(
        top.alpha,
        top.k_percent,
        top.positions,
        top.rank_by,
        "attribution",
        "additive",
        Selection(alpha=top.alpha, k_percent=top.k_percent),
    )
    s = settings
    fitted = s.scales.learn(run, strength, s.seed, s.batch_size, s.n_validation)
    return fitted.report([]).validation


def sweep(settings: SweepSettings, extra_grids: tuple[SweepSettings, ...] = ()) -> Path | None:
    """The sweep over `settings`' grid, plus the rows of `extra_grids`: only their methods,
    rankings, edits, k% and α are read (bench/pareto.py draws one frontier from several).
    None in the extra processes of a multi-device run: they score, rank zero sweeps."""
    run = SteeringRun(settings)
    out = check_output(
        settings.out or run.default_out("-sweep"),
        settings.force,
        run.inputs(),
        writer=run.is_rank_zero,
    )
    for g in (settings, *extra_grids):  # every process of a multi-device run scores
        for method in g.methods:
            run.scores(g.positions, "attribution" if method == "all" else method)
    if not run.is_rank_zero:
        return None
    questions = run.recipe.validation[: settings.n_validation]
    rows = [measure(run, questions, None, "base")]
    for grid_settings in (settings, *extra_grids):
        rows += grid(run, grid_settings, questions)
    if settings.learn_scales:
        rows += learned_rows(run, rows, settings)
    prompted = None
    if run.recipe.directive is not None:
        prompted = measure(run, questions, None, PROMPTED, directive=run.recipe.directive)
    title = (
        f"{run.model_ref.slug}: '{run.recipe.name}' sweep, {len(questions)} validation questions"
    )
    with staged_folder(out) as staging:
        write_csv(rows, staging / "sweep.csv")
        write_csv(rows, staging / "pareto.csv", pareto=on_frontier(rows))
        plot_sweep(rows, staging / "sweep.png", title)
        plot_pareto(rows, prompted, staging / "pareto.png", title)
        (staging / "report.md").write_text(markdown_report(rows, prompted, title))
    print_tables(results_table(title, rows), frontier_table(f"{title}: the frontier", rows))
    console.print(f"[bold]wrote[/] {out}/sweep.csv, sweep.png, pareto.csv, pareto.png, report.md")
    return out
