"""Rich tables for the end of a run: what a user reads before sharing a checkpoint."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from gcm_edit.evaluation.answers import Evaluation
from gcm_edit.evaluation.retention import Retention


def metrics_table(title: str, rows: dict[str, Evaluation]) -> Table:
    table = Table(title=title)
    grade = next(iter(rows.values())).grade_label
    for column in ("model", "success", "concept", "fluent", "rep. bigrams", "median ppl", grade):
        table.add_column(column, justify="left" if column == "model" else "right")
    for name, ev in rows.items():
        table.add_row(
            name,
            f"{ev.success_rate:.0%}",
            f"{ev.concept_rate:.0%}",
            f"{ev.fluent_rate:.0%}",
            f"{ev.repeated_ngram_rate:.3f}",
            f"{ev.median_perplexity:.1f}",
            f"{ev.grade:.2f}",
        )
    return table


def retention_table(retention: Retention) -> Table:
    table = Table(title=f"Retention on {retention.n_prompts} neutral prompts and a neutral text")
    for column in ("KL(base ‖ steered) per token", "neutral text ppl: base", "steered"):
        table.add_column(column, justify="right")
    table.add_row(
        f"{retention.kl:.4f}",
        f"{retention.neutral_ppl_base:.2f}",
        f"{retention.neutral_ppl_steered:.2f}",
    )
    return table


def comparison_table(rows: list[dict]) -> Table:
    table = Table(title="Learned scales vs the best uniform α at the same number of heads")
    for column in ("plan", "heads", "success", "concept", "fluent", "KL(base ‖ steered)"):
        table.add_column(column, justify="left" if column == "plan" else "right")
    for row in rows:
        name = "learned scales" if row["plan"] == "steered" else row["plan"]
        rates = (f"{row[k]:.0%}" for k in ("success", "concept", "fluent"))
        table.add_row(name, str(row["heads"]), *rates, f"{row['kl']:.4f}")
    return table


def composition_table(rows: list[dict]) -> Table:
    table = Table(title="Composed concepts: each concept's held-out success")
    for column in ("concept", "heads", "base", "alone", "composed"):
        table.add_column(column, justify="left" if column == "concept" else "right")
    for row in rows:
        rates = (f"{row[f'{k}_success']:.0%}" for k in ("base", "alone", "composed"))
        table.add_row(row["concept"], str(len(row["heads"])), *rates)
    return table


def samples_table(base: Evaluation, steered: Evaluation, n: int = 3) -> Table:
    table = Table(title="Sample held-out answers", show_lines=True)
    table.add_column("question")
    table.add_column("base")
    table.add_column("steered")
    for b, s in list(zip(base.answers, steered.answers, strict=True))[:n]:
        table.add_row(b["question"], b["answer"], s["answer"])
    return table


def print_tables(*tables: Table) -> None:
    console = Console()
    for table in tables:
        console.print(table)
