"""Old option names work for one release: hidden from --help, mapped onto the new option,
with a one-line notice naming the new spelling."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from gcm_edit.cli.app import app
from gcm_edit.commands.export_settings import ExportSettings
from gcm_edit.commands.sweep_settings import SweepSettings

JOBS = {"export": "gcm_edit.commands.export.export", "sweep": "gcm_edit.commands.sweep.sweep"}
CLASSES = {"export": ExportSettings, "sweep": SweepSettings}
# command, old name → (options it needs beside it, the old option's value, where the new one
# lands, what it holds)
BUDGET = ["--kl-budget", "0.5", "--edit", "mean-diff"]
RENAMED = {
    ("export", "learn_scales"): ([], None, "edit.kind", "scales"),
    ("export", "auto_alphas"): (["--alpha", "auto"], "1,2", "alphas", [1.0, 2.0]),
    ("export", "budget_alphas"): (BUDGET, "1", "alphas", [1.0]),
    ("export", "auto_ks"): (["--k", "auto"], "2,5", "ks", [2.0, 5.0]),
    ("export", "budget_positions"): (BUDGET, "all", "positions_grid", ["all"]),
    ("export", "budget_rank_by"): (BUDGET, "effect", "rankings", ["effect"]),
    ("export", "budget_interventions"): (BUDGET, "rank1", "interventions", ["rank1"]),
    ("export", "scale_steps"): ([], "7", "edit.steps", 7),
    ("export", "scale_lr"): ([], "0.2", "edit.lr", 0.2),
    ("export", "scale_eval_every"): ([], "3", "edit.eval_every", 3),
    ("export", "device"): ([], "cpu", "accelerator", "cpu"),
    ("sweep", "device"): ([], "cpu", "accelerator", "cpu"),
    ("sweep", "rank_by"): ([], "effect", "rankings", ["effect"]),
    ("sweep", "scale_steps"): (["--learn-scales"], "7", "scales.steps", 7),
    ("sweep", "scale_lr"): (["--learn-scales"], "0.2", "scales.lr", 0.2),
    ("sweep", "scale_eval_every"): (["--learn-scales"], "3", "scales.eval_every", 3),
}  # fmt: skip


def test_every_old_name_has_a_case():
    for command, cls in CLASSES.items():
        assert {old for c, old in RENAMED if c == command} == set(cls.renamed), command


def _dotted(settings, path: str):
    for part in path.split("."):
        settings = getattr(settings, part)
    return settings


@pytest.mark.parametrize(("command", "old"), list(RENAMED))
def test_old_name_maps_onto_the_new_one_with_a_notice(monkeypatch, command, old):
    needs, value, where, expected = RENAMED[command, old]
    seen = []
    monkeypatch.setattr(JOBS[command], seen.append)
    flag = "--" + old.replace("_", "-")
    result = CliRunner().invoke(app, [command, *needs, flag, *([value] if value else [])])
    assert result.exit_code == 0, (result.output, result.exception)
    (settings,) = seen
    assert _dotted(settings, where) == expected
    (notice,) = [line for line in result.stderr.splitlines() if line.strip()]
    new = CLASSES[command].flag(CLASSES[command].renamed[old][0])
    assert notice.startswith(f"note: {flag} is now {new}") and "next release" in notice


@pytest.mark.parametrize("command", list(CLASSES))
def test_help_shows_new_names_only(command):
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for c, old in RENAMED:
        if c == command:
            assert "--" + old.replace("_", "-") + " " not in result.output, old


def test_old_and_new_name_that_disagree_are_refused():
    result = CliRunner().invoke(app, ["export", "--ks", "1", "--auto-ks", "2", "--k", "auto"])
    assert result.exit_code == 2
    assert "--auto-ks (now --ks 2) contradicts --ks 1: give one of them" in result.stderr
