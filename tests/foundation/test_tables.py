"""Result tables written to a log or a pipe keep every figure whole (an 80-column cut once
turned "[16%–30%]" into "[16%–30…")."""

from __future__ import annotations

from gcm_edit.evaluation.rates import Rate
from gcm_edit.tables import Column, ResultTable, print_tables


def test_wide_table_is_not_cut_when_not_a_terminal(capsys):
    rows = [("steered", Rate(k=28, n=128)), ("prompted", Rate(k=66, n=128))]
    columns = [Column("model", lambda r: r[0])]
    columns += [Column(f"rate {i}", lambda r: r[1]) for i in range(9)]  # ~150 columns wide
    print_tables(ResultTable("held-out", columns, rows))
    out = capsys.readouterr().out
    assert out.count(str(Rate(k=28, n=128))) == 9 and out.count(str(Rate(k=66, n=128))) == 9
    assert "…" not in out
