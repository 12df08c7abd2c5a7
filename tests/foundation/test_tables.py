"""Result tables written to a log or a pipe keep every figure whole (an 80-column cut once
turned "[16%–30%]" into "[16%–30…")."""

from __future__ import annotations

from gcm_edit.evaluation.rates import Rate
from gcm_edit.tables import PROSE, Column, ResultTable, print_tables


def test_wide_table_is_not_cut_when_not_a_terminal(capsys):
    rows = [("steered", Rate(k=28, n=128)), ("prompted", Rate(k=66, n=128))]
    columns = [Column("model", lambda r: r[0])]
    columns += [Column(f"rate {i}", lambda r: r[1]) for i in range(9)]  # ~150 columns wide
    print_tables(ResultTable("held-out", columns, rows))
    out = capsys.readouterr().out
    assert out.count(str(Rate(k=28, n=128))) == 9 and out.count(str(Rate(k=66, n=128))) == 9
    assert "…" not in out


def test_prose_table_wraps_at_a_readable_width_when_not_a_terminal(capsys):
    answer = " ".join(f"word{i}" for i in range(120))  # ~900 characters of one answer
    columns = [Column("question", lambda r: r[0]), Column("answer", lambda r: r[1])]
    print_tables(ResultTable("samples", columns, [("Why?", answer)], prose=True))
    lines = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in lines) <= PROSE
    assert all(f"word{i}" in "".join(lines) for i in range(120))  # wrapped, nothing cut
    body = [line for line in lines if "word0" in line][0]
    assert body.index("word0") < PROSE // 2  # left-aligned, not padded across the line
