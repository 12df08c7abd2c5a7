"""`bench/distill.py --only a,b` names variants separated by commas: a name holding a comma
could never be asked for, and an unknown name is refused in one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_every_variant_can_be_named_alone(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    import distill

    assert distill.VARIANTS and all("," not in name for name in distill.VARIANTS)


def test_an_unknown_variant_is_one_line():
    done = subprocess.run(
        [sys.executable, str(BENCH / "distill.py"), "--only", "all heads"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "unknown variant 'all heads'; variants:" in done.stderr.splitlines()[-1]
