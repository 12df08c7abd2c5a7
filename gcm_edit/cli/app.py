"""The `gcm-edit` command line. Options come from the settings classes (cli/options.py); each
command's module is imported only when it runs, so `--help` stays fast.

Every command runs behind one error boundary (`run_job`): a failure is one line on stderr
and an exit code, never a traceback unless asked for with --debug or GCM_EDIT_DEBUG=1.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from collections.abc import Callable
from importlib import import_module
from typing import Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

from gcm_edit.cli.options import settings_command
from gcm_edit.commands import settings as s
from gcm_edit.commands.export_settings import ExportSettings
from gcm_edit.commands.sweep_settings import SweepSettings
from gcm_edit.errors import GcmEditError

BAD_INPUT, INTERNAL, INTERRUPTED = 2, 1, 130  # exit codes
# Errors of the click that typer parses with (recent typer versions vendor their own copy).
ClickException = import_module(typer.BadParameter.__module__).ClickException
_debug = False  # this invocation's --debug, set by the app's callback


class OneLineErrors(TyperGroup):
    """Click's own errors (an unknown option, a value that is not a number) as one line too."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:  # not standalone: returns typer.Exit's code, None when all went well
            code = super().main(*args, standalone_mode=False, **kwargs)
        except ClickException as exc:
            typer.echo(f"error: {' '.join(exc.format_message().split())}", err=True)
            code = exc.exit_code
        sys.exit(code or 0)


app = typer.Typer(cls=OneLineErrors, add_completion=False, pretty_exceptions_enable=False)


@app.callback(invoke_without_command=True)
def main(
    ctx: typer.Context,
    debug: Annotated[
        bool, typer.Option("--debug", help="Print the traceback of a failure (GCM_EDIT_DEBUG=1).")
    ] = False,
) -> None:
    """Find the attention heads that mediate a concept, steer them, export a verified model."""
    global _debug
    _debug = debug
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())


def _debugging() -> bool:
    return _debug or os.environ.get("GCM_EDIT_DEBUG", "") not in ("", "0")


def _fail(code: int, message: str) -> NoReturn:
    """One line on stderr (after the traceback when debugging), then exit with `code`."""
    if _debugging():
        traceback.print_exc()
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code) from None


def _terminated(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def run_job(job: Callable[[], Any]) -> None:
    """Run a command's job behind the error boundary: a problem the user can fix
    (GcmEditError) exits 2, any other exception 1 (an internal error), an interrupt 130."""
    from gcm_edit.output import release_outputs

    try:
        from gcm_edit.console import quiet_libraries

        quiet_libraries()
        signal.signal(signal.SIGTERM, _terminated)  # `kill`, a scheduler: clean up like Ctrl-C
        job()
    except GcmEditError as exc:
        _fail(BAD_INPUT, " ".join(str(exc).split()))
    except KeyboardInterrupt:
        _fail(INTERRUPTED, "interrupted")
    except Exception as exc:
        lines = str(exc).strip().splitlines()
        message = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
        hint = "" if _debugging() else " (run with --debug or GCM_EDIT_DEBUG=1 for the traceback)"
        _fail(INTERNAL, f"internal error: {message}{hint}")
    finally:
        release_outputs()


def _lazy(module: str, function: str) -> Callable[[Any], None]:
    """Import `gcm_edit.commands.<module>` when the command runs, then call `function`."""

    def job(settings: Any) -> None:
        run_job(lambda: getattr(import_module(f"gcm_edit.commands.{module}"), function)(settings))

    return job


COMMANDS = {
    "export": (
        ExportSettings,
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
        SweepSettings,
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
    help="List the built-in concept recipes, show one, or write one from a sentence.",
    no_args_is_help=False,
)
app.add_typer(recipes_app, name="recipes")


@recipes_app.callback(invoke_without_command=True)
def recipes_list(ctx: typer.Context) -> None:
    """One line per built-in recipe: name, judge, training prompts, description."""
    if ctx.invoked_subcommand is not None:
        return
    from gcm_edit.inputs.recipe_files import builtin_names, load_recipe

    def show() -> None:
        for name in builtin_names():
            recipe = load_recipe(name)
            source = "pairs" if recipe.pairs is not None else "questions + directive"
            typer.echo(
                f"{name:<12} judge={recipe.judge:<9} {len(recipe.pairs or recipe.train):>3} "
                f"training {source:<21} {recipe.description}"
            )

    run_job(show)


@recipes_app.command("show")
def recipes_show(
    name: Annotated[str, typer.Argument(help="A built-in recipe name or a recipe .yaml path.")],
) -> None:
    """Print a recipe's YAML (validated first), e.g. to copy it as a starting point."""
    from gcm_edit.inputs.recipe_files import load_recipe, recipe_path

    def show() -> None:
        load_recipe(name)
        typer.echo(recipe_path(name).read_text(), nl=False)

    run_job(show)


@recipes_app.command("new")
def recipes_new(
    sentence: Annotated[
        str, typer.Argument(help='The concept in one sentence, e.g. "Answer like a pirate."')
    ],
) -> None:
    """Print the recipe a sentence concept runs with (everyday questions, a learned judge),
    to edit and pass back with --concept FILE.yaml."""
    from gcm_edit.inputs.recipe_files import recipe_yaml
    from gcm_edit.inputs.sentence import sentence_recipe

    run_job(lambda: typer.echo(recipe_yaml(sentence_recipe(sentence)), nl=False))


if __name__ == "__main__":  # `python -m gcm_edit.cli.app`, as the tests run it
    app(prog_name="gcm-edit")
