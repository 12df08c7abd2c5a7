"""The `gcm-edit` command line. Options come from the settings classes (cli/options.py); each
command's module is imported only when it runs, so `--help` stays fast."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Annotated, Any

import typer

from gcm_edit.cli.options import settings_command
from gcm_edit.commands import settings as s
from gcm_edit.errors import GcmEditError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False)


def run_job(job: Callable[[], Any]) -> None:
    """Run a command's job; a GcmEditError becomes one line on stderr and exit code 2."""
    from gcm_edit.console import quiet_libraries

    quiet_libraries()
    try:
        job()
    except GcmEditError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _lazy(module: str, function: str) -> Callable[[Any], None]:
    """Import `gcm_edit.commands.<module>` when the command runs, then call `function`."""

    def job(settings: Any) -> None:
        run_job(lambda: getattr(import_module(f"gcm_edit.commands.{module}"), function)(settings))

    return job


COMMANDS = {
    "export": (
        s.ExportSettings,
        _lazy("export", "export"),
        "Find the heads that mediate CONCEPT, bake steering into them, write a verified "
        "checkpoint. Repeat --concept to bake several concepts into one model.",
    ),
    "score": (
        s.ScoreSettings,
        _lazy("score", "score"),
        "Score every attention head by how much it mediates CONCEPT; write scores.csv + heatmap.",
    ),
    "calibrate": (
        s.CalibrateSettings,
        _lazy("calibrate", "calibrate"),
        "Measure success on the validation split over δ positions × α (how defaults are chosen).",
    ),
    "sweep": (
        s.SweepSettings,
        _lazy("sweep", "sweep"),
        "Validation success vs k% for each selection method (is causal selection better?).",
    ),
    "eval": (
        s.EvalSettings,
        _lazy("evaluate", "evaluate_model"),
        "Answer the recipe's questions (no directive) with MODEL; print success and retention.",
    ),
    "verify": (
        s.VerifySettings,
        _lazy("verify", "verify"),
        "Reload FOLDER with plain transformers and check it equals the hooked steered base model.",
    ),
}
for _name, (_cls, _job, _doc) in COMMANDS.items():
    app.command(_name)(settings_command(_cls, _job, _doc))


recipes_app = typer.Typer(
    help="List the built-in concept recipes, or show one.", no_args_is_help=False
)
app.add_typer(recipes_app, name="recipes")


@recipes_app.callback(invoke_without_command=True)
def recipes_list(ctx: typer.Context) -> None:
    """One line per built-in recipe: name, judge, training prompts, description."""
    if ctx.invoked_subcommand is not None:
        return
    from gcm_edit.inputs.recipe import builtin_names, load_recipe

    for name in builtin_names():
        recipe = load_recipe(name)
        source = "pairs" if recipe.pairs is not None else "questions + directive"
        typer.echo(
            f"{name:<12} judge={recipe.judge:<9} {len(recipe.pairs or recipe.train):>3} training "
            f"{source:<21} {recipe.description}"
        )


@recipes_app.command("show")
def recipes_show(
    name: Annotated[str, typer.Argument(help="A built-in recipe name or a recipe .yaml path.")],
) -> None:
    """Print a recipe's YAML (validated first), e.g. to copy it as a starting point."""
    from gcm_edit.inputs.recipe import load_recipe, recipe_path

    def show() -> None:
        load_recipe(name)
        typer.echo(recipe_path(name).read_text(), nl=False)

    run_job(show)


