"""Every refusal of an option combination comes before any work: one line, exit 2, no model
loaded. The table below names the check each case reaches; a new check in a settings
validator fails `test_every_check_has_a_case` until a case here reaches it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from typer.testing import CliRunner

import gcm_edit.commands
from gcm_edit.cli.app import app

COMMANDS = Path(gcm_edit.commands.__file__).parent
EXPORT = "export_settings._options_that_cannot_all_hold"
# module.check → command line (MODEL for the tiny model folder), a fragment of its error
CASES = [
    (EXPORT, "export --concept verse --concept verse", "verse is given twice"),
    (EXPORT, "export --edit mean-diff --kl-budget 0.5 --k 5", "chooses --k itself"),
    (
        EXPORT,
        "export --edit scales --kl-budget 0.5 --interventions rank1",
        "--interventions is only read with --edit mean-diff",
    ),
    (EXPORT, "export --gguf q8_0 --format adapter", "--gguf needs --format full"),
    (
        EXPORT,
        "export --edit distilled --edit-neurons 2 --format adapter",
        "--edit-neurons needs --format full",
    ),
    (
        EXPORT,
        "export --concept verse --concept refusal",
        "cannot be combined with several --concept",
    ),
    (EXPORT, "export --rankings effect", "--rankings is only read with --kl-budget"),
    (EXPORT, "export --alphas 1,2", "--alphas is only read with --alpha auto"),
    (EXPORT, "export --ks 1,2", "--ks is only read with --k auto"),
    (EXPORT, "export --doses 2", "--doses is only read with --format adapter"),
    (EXPORT, "export --compose-disjoint", "only read with several --concept"),
    ("settings._unsharded", "export --strategy fsdp", "--strategy fsdp shards the model"),
    (
        "settings._local_judge",
        "export --judge-model /nonexistent/judge.gguf",
        "--judge-model /nonexistent/judge.gguf does not exist",
    ),
    ("settings._unsharded", "sweep --strategy fsdp", "--strategy fsdp shards the model"),
    ("settings._unsharded", "calibrate --strategy fsdp", "--strategy fsdp shards the model"),
    (
        "settings_base._lift",
        "export --edit mean-diff --learn-scales",
        "contradicts --edit mean-diff",
    ),
    (
        "settings_base._lift_into",
        "export --edit mean-diff --edit-steps 5",
        "--edit-steps is only read with --edit",
    ),
    (
        "settings_base._lift_into",
        "export --edit distilled --scale-candidates 5",
        "--scale-candidates is only read with --edit scales",
    ),
    ("settings_base._no_repeats", "export --alpha auto --alphas 1,1", "1 is given twice"),
    (
        "sweep_settings._learned_scales_need_their_start",
        "sweep --edit-steps 5",
        "--edit-steps is only read with --learn-scales",
    ),
    (
        "sweep_settings._learned_scales_need_their_start",
        "sweep --learn-scales --methods probe",
        "starts from the best additive attribution plan",
    ),
    (
        "evaluate.served_gguf",
        "eval MODEL --runtime llama.cpp",
        "--runtime llama.cpp evaluates MODEL/model.gguf",
    ),
]
SETTINGS_MODULES = ["settings", "settings_base", "export_settings", "sweep_settings"]


def _checks(module: str) -> dict[str, int]:
    """Each function of a settings module → its refusals: raises, and `_given_without` calls
    (each a refusal of its own options)."""
    tree = ast.parse((COMMANDS / f"{module}.py").read_text())
    found = {}
    for fn in ast.walk(tree):
        if not isinstance(fn, ast.FunctionDef) or fn.name == "_given_without":
            continue
        raises = [n for n in ast.walk(fn) if isinstance(n, ast.Raise)]
        calls = [
            n
            for n in ast.walk(fn)
            if isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "_given_without"
        ]
        if raises or calls:
            found[fn.name] = len(raises) + len(calls)
    return found


def test_every_check_has_a_case():
    """Each refusal site of the settings validators is reached by at least one case."""
    for module in SETTINGS_MODULES:
        for check, sites in _checks(module).items():
            cases = [c for c in CASES if c[0] == f"{module}.{check}"]
            assert len(cases) >= sites, f"{module}.{check}: {sites} refusals, {len(cases)} cases"


def _no_model_loading(*_args, **_kwargs):
    raise AssertionError("the model was loaded before the options were refused")


@pytest.mark.parametrize(("check", "line", "message"), CASES)
def test_refused_before_the_model_loads(
    tiny_model_dir, isolated_cache, monkeypatch, check, line, message
):
    monkeypatch.setattr("gcm_edit.commands.run.load_model", _no_model_loading)
    args = [str(tiny_model_dir) if word == "MODEL" else word for word in line.split()]
    if "MODEL" not in line:
        args += ["--model", str(tiny_model_dir)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, (result.output, result.exception)
    lines = [row for row in result.stderr.splitlines() if row.strip()]
    assert lines[-1].startswith("error: ") and message in lines[-1], result.stderr
    assert not list(isolated_cache.rglob("*.json")), "no stage ran"
