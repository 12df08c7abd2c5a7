"""Typer commands generated from the settings classes: each option is declared once, as a
settings field whose description is its help text and whose default is its default."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin

import typer
from pydantic import ValidationError
from pydantic.fields import FieldInfo

from gcm_edit.commands.settings import Settings

_PLAIN = (bool, int, float, str, Path)


def _extra(field: FieldInfo) -> dict:
    return field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}


def _choices(annotation: Any) -> list[str]:
    """The literal values an annotation allows (through unions and lists), for the help."""
    if get_origin(annotation) is typing.Literal:
        return [str(v) for v in get_args(annotation)]
    return [c for arg in get_args(annotation) for c in _choices(arg)]


def _cli_type(field: FieldInfo, repeated: bool) -> Any:
    """What typer parses; pydantic then validates (Literals, ranges, "auto", lists)."""
    annotation = field.annotation
    if repeated or get_origin(annotation) is list:
        return list[str]
    if annotation in _PLAIN:
        return annotation
    inner = [a for a in get_args(annotation) if a is not type(None)]
    if type(None) in get_args(annotation) and len(inner) == 1 and inner[0] in _PLAIN:
        return inner[0] | None
    return str  # literals, numbers-or-"auto"


def _cli_default(field: FieldInfo) -> Any:
    if field.is_required():
        return inspect.Parameter.empty
    default = field.get_default(call_default_factory=True)
    if isinstance(default, list):
        return [str(v) for v in default]
    return default


def _parameter(name: str, field: FieldInfo, repeated: bool) -> inspect.Parameter:
    extra = _extra(field)
    help_text = field.description or ""
    choices = _choices(field.annotation)
    if choices and not repeated:
        help_text += f" [{'|'.join(choices)}]"
    listed = get_origin(field.annotation) is list
    if listed:
        help_text += " Comma-separated or repeated."
    cli_type = _cli_type(field, repeated)
    if extra.get("argument"):
        info: Any = typer.Argument(help=help_text, show_default=False, metavar=name.upper())
    else:
        flag = "--" + extra.get("flag", name).replace("_", "-")
        if cli_type is bool:
            flag += f"/--no-{flag[2:]}"
        info = typer.Option(flag, help=help_text, metavar="TEXT" if repeated or listed else None)
    default = _cli_default(field)
    if repeated and not listed:
        default = [default]
    return inspect.Parameter(
        name,
        inspect.Parameter.KEYWORD_ONLY,
        default=default,
        annotation=Annotated[cli_type, info],
    )


def to_settings(cls: type[Settings], values: dict[str, Any]) -> Settings:
    """CLI values → settings; list options given repeatedly and/or comma-separated are
    joined into one list; a validation error names the option."""
    for name, value in values.items():
        if get_origin(cls.model_fields[name].annotation) is list and isinstance(value, list):
            items = [item.strip() for given in value for item in given.split(",")]
            if items != [""] and "" in items:  # '' alone is the empty list
                typer.echo(f"error: {cls.flag(name)}: empty item in {','.join(value)!r}", err=True)
                raise typer.Exit(2)
            values[name] = [item for item in items if item]
    try:
        return cls(**values)
    except ValidationError as exc:
        err = exc.errors()[0]
        message = err["msg"].removeprefix("Value error, ")
        name = str(err["loc"][0]) if err["loc"] else ""
        if name in cls.model_fields:  # else a check across options: it names them itself
            message = f"{cls.flag(name)}: {message}"
        typer.echo(f"error: {message}", err=True)
        raise typer.Exit(2) from None


def settings_command(
    cls: type[Settings], job: Callable[[Any], None], doc: str
) -> Callable[..., None]:
    """A typer command whose options are `cls`'s fields; it validates them and runs `job`."""
    params = [
        _parameter(name, field, name in cls.cli_repeated)
        for name, field in cls.model_fields.items()
        if _extra(field).get("cli", True)
    ]
    params.sort(key=lambda p: p.default is not inspect.Parameter.empty)  # arguments first

    def command(ctx: typer.Context, **values: Any) -> None:
        # Only what the user typed: the settings' defaults fill the rest, and
        # `model_fields_set` tells a given option from a default (conflicting options).
        given = {
            name: value
            for name, value in values.items()
            if getattr(ctx.get_parameter_source(name), "name", None) != "DEFAULT"
        }
        job(to_settings(cls, given))

    context = inspect.Parameter(
        "ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context
    )
    params.insert(0, context)
    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.__doc__ = doc
    return command
