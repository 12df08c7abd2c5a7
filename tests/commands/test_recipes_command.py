"""`gcm-edit recipes` lists the built-in concepts; `recipes show NAME` prints one."""

from __future__ import annotations

from typer.testing import CliRunner

from gcm_edit.cli.app import app


def test_recipes_command():
    listing = CliRunner().invoke(app, ["recipes"])
    assert listing.exit_code == 0
    lines = listing.output.strip().splitlines()
    assert [line.split()[0] for line in lines] == ["refusal", "sycophancy", "verse"]
    assert "judge=critique" in lines[1]
    shown = CliRunner().invoke(app, ["recipes", "show", "sycophancy"])
    assert shown.exit_code == 0 and "I hate this poem." in shown.output
    missing = CliRunner().invoke(app, ["recipes", "show", "nope"])
    assert missing.exit_code == 2 and "unknown concept 'nope'" in missing.stderr
