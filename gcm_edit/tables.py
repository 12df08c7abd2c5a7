"""One column spec per result: the same cells render as a rich table (console) and as a
markdown table (model card, reports), so no figure is formatted in two places."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table


@dataclass(frozen=True)
class Column:
    """A header and how to get one cell's value from a row; `fmt` is a format spec."""

    header: str
    value: Callable[[Any], Any]
    fmt: str = ""

    def cell(self, row: Any) -> str:
        return format(self.value(row), self.fmt)


@dataclass(frozen=True)
class ResultTable:
    title: str
    columns: Sequence[Column]
    rows: Sequence[Any]
    prose: bool = False  # cells of text (answers): left-aligned, wrapped in a log too

    def cells(self) -> list[list[str]]:
        return [[column.cell(row) for column in self.columns] for row in self.rows]

    def rich(self, show_lines: bool = False) -> Table:
        """The first column is the row's name (left-aligned); figures are right-aligned."""
        table = Table(title=self.title, show_lines=show_lines)
        for i, column in enumerate(self.columns):
            left = i == 0 or self.prose
            table.add_column(column.header, justify="left" if left else "right")
        for cells in self.cells():
            table.add_row(*cells)
        return table

    def markdown(self) -> str:
        def line(cells: Sequence[str]) -> str:
            return "| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |"

        lines = [line([c.header for c in self.columns]), "|---" * len(self.columns) + "|"]
        return "\n".join(lines + [line(cells) for cells in self.cells()])


WIDE = 1000  # columns of a table printed to a file or pipe: no cell is ever cut
PROSE = 120  # columns of a prose table there: its answers wrap instead of running on


def print_tables(*tables: ResultTable | Table) -> None:
    """Result tables to stdout, after the progress lines on stderr. On a terminal they fit its
    width (cells wrap); written to a log or a pipe, figure tables keep their natural width, so
    figures are whole ("[16%–30%]", never "[16%–30…"), and prose tables wrap at PROSE."""
    terminal = Console()
    for table in tables:
        console = terminal
        if not terminal.is_terminal:
            prose = isinstance(table, ResultTable) and table.prose
            console = Console(width=PROSE if prose else WIDE)
        console.print(table.rich() if isinstance(table, ResultTable) else table)
