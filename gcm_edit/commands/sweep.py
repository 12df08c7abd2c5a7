"""`gcm-edit sweep`: is causal selection better? Success vs k% per selection method.

Every (method, k%, α) plan is measured on the validation split; "all" steers every head.
Pairs, scores and answers come from the run cache, so re-running or widening a grid only
generates what is new. Writes sweep.csv, sweep.png and report.md.
"""

from __future__ import annotations

from pathlib import Path

from gcm_edit.commands.candidates import measure
from gcm_edit.commands.run import SteeringRun
from gcm_edit.commands.settings import SweepSettings
from gcm_edit.console import console
from gcm_edit.evaluation.plan_results import PlanResult, best, results_table, write_csv
from gcm_edit.output import check_output, staged_folder
from gcm_edit.tables import Column, ResultTable, print_tables

REFERENCES = ("base", "all")  # drawn as lines, not as a curve over k


def best_by_k(rows: list[PlanResult], method: str) -> dict[float, PlanResult]:
    """For one method, the best row (over α) at each k%."""
    ks = sorted({r.k_percent for r in rows if r.method == method})
    return {k: best([r for r in rows if r.method == method and r.k_percent == k]) for k in ks}


def sparse_ks(rows: list[PlanResult]) -> list[float]:
    return sorted({r.k_percent for r in rows if r.method not in REFERENCES})


def plot_sweep(rows: list[PlanResult], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for method in dict.fromkeys(r.method for r in rows if r.method not in REFERENCES):
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

    methods = list(dict.fromkeys(r.method for r in rows if r.method not in REFERENCES))
    columns = [Column("method", str)] + [Column(f"k={k:g}%", cell(k)) for k in sparse_ks(rows)]
    title = "Best α per cell: success (concept ∧ fluent ∧ relevant) [95% interval], KL"
    return ResultTable(title, columns, methods)


def markdown_report(rows: list[PlanResult], title: str) -> str:
    lines = [f"# {title}", "", by_k_table(rows).markdown(), ""]
    for method, name in (("all", "All heads"), ("base", "Base model")):
        if any(r.method == method for r in rows):
            top = best([r for r in rows if r.method == method])
            alpha = f" at α={top.alpha:g}" if method == "all" else ""
            lines.append(f"{name}: success {top.success}{alpha}, KL {top.kl:.3f}.")
    overall = best([r for r in rows if r.method not in REFERENCES] or rows)
    lines += [
        "",
        f"Best sparse plan: **{overall.method}**, k={overall.k_percent}%, "
        f"α={overall.alpha} → success {overall.success} "
        f"({overall.n_heads} heads, KL {overall.kl:.3f}).",
        "",
        "## Every measurement",
        "",
        results_table(title, rows).markdown(),
    ]
    return "\n".join(lines) + "\n"


def sweep(settings: SweepSettings) -> Path:
    run = SteeringRun(settings)
    out = check_output(
        settings.out or run.default_out("-sweep"),
        settings.force,
        run.model_ref.source,
        writer=run.is_rank_zero,
    )
    questions = run.recipe.validation[: settings.n_validation]
    positions, intervention = settings.positions, settings.intervention
    rows = [measure(run, questions, None, "base")]
    for method in settings.methods:
        selection = "attribution" if method == "all" else method  # "all": any ranking, k = 100%
        for k in [100.0] if method == "all" else settings.ks:
            for alpha in settings.alphas:
                plan = run.plan(positions, alpha, k, selection, intervention)
                keys = dict(positions=positions, k_percent=k, alpha=alpha)
                rows.append(measure(run, questions, plan, method, **keys))
    title = (
        f"{run.model_ref.slug}: '{run.recipe.name}' sweep, {len(questions)} validation questions"
    )
    with staged_folder(out) as staging:
        write_csv(rows, staging / "sweep.csv")
        plot_sweep(rows, staging / "sweep.png", title)
        (staging / "report.md").write_text(markdown_report(rows, title))
    print_tables(results_table(title, rows))
    console.print(f"[bold]wrote[/] {out}/sweep.csv, sweep.png, report.md")
    return out
