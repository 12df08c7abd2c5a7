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

from gcm_edit.commands.settings_base import Settings, extra, kind_of, members

_PLAIN = (bool, int, float, str, Path)


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


def _parameter(
    name: str, field: FieldInfo, repeated: bool, per_kind: str = ""
) -> inspect.Parameter:
    """One option; `per_kind`: the defaults of a nested option, one per edit kind."""
    options = extra(field)
    help_text = (field.description or "") + per_kind
    choices = _choices(field.annotation)
    if choices and not repeated:
        help_text += f" [{'|'.join(choices)}]"
    listed = get_origin(field.annotation) is list
    if listed:
        help_text += " Comma-separated or repeated."
    cli_type = _cli_type(field, repeated)
    if options.get("argument"):
        info: Any = typer.Argument(help=help_text, show_default=False, metavar=name.upper())
    else:
        flag = "--" + options.get("flag", name).replace("_", "-")
        if cli_type is bool:
            flag += f"/--no-{flag[2:]}"
        info = typer.Option(
            flag,
            help=help_text,
            metavar="TEXT" if repeated or listed else None,
            show_default=not per_kind,
        )
    default = _cli_default(field)
    if repeated and not listed:
        default = [default]
    return inspect.Parameter(
        name,
        inspect.Parameter.KEYWORD_ONLY,
        default=default,
        annotation=Annotated[cli_type, info],
    )


def _nested_parameters(cls: type[Settings]) -> list[inspect.Parameter]:
    """`--edit KIND` for a tagged union, and one option per nested field (shared names once,
    their default per kind in the help)."""
    params = []
    for name, field in cls.model_fields.items():
        kinds = [kind_of(c) for c in members(field)] if extra(field).get("flatten") else []
        if len(kinds) > 1:  # a tagged union: `--edit KIND`
            default = kind_of(type(field.get_default(call_default_factory=True)))
            help_text = f"{field.description} [{'|'.join(kinds)}]"
            info = typer.Option("--" + name.replace("_", "-"), help=help_text)
            params.append(_keyword(name, default, Annotated[str, info]))
    for flat, (_parent, readers) in cls.flattened().items():
        config, inner = readers[0]
        field = config.model_fields[inner]
        defaults = "; ".join(
            f"{kind_of(c) or 'default'}: {c.model_fields[n].default}" for c, n in readers
        )
        params.append(_parameter(flat, field, False, f" (default {defaults})"))
    return params


def _renamed_parameters(cls: type[Settings]) -> list[inspect.Parameter]:
    """Old option names, hidden, for one release (the job prints a notice when used)."""
    params = []
    for old, (_new, value) in cls.renamed.items():
        flag = "--" + old.replace("_", "-")
        if value is not None:
            info = typer.Option(flag, hidden=True)
            params.append(_keyword(old, False, Annotated[bool, info]))
        else:
            cli_type = _cli_type(cls.option_field(old), False)
            info = typer.Option(flag, hidden=True, metavar="TEXT")
            params.append(_keyword(old, None, Annotated[cli_type | None, info]))
    return params


def _keyword(name: str, default: Any, annotation: Any) -> inspect.Parameter:
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
    )


def renamed_notice(cls: type[Settings], given: dict[str, Any]) -> None:
    for old in given.keys() & cls.renamed.keys():
        new, value = cls.renamed[old]
        now = cls.flag(new) + ("" if value is None else f" {value}")
        typer.echo(
            f"note: {cls.flag(old)} is now {now}; the old name goes in the next release",
            err=True,
        )


def to_settings(cls: type[Settings], values: dict[str, Any]) -> Settings:
    """CLI values → settings; list options given repeatedly and/or comma-separated are
    joined into one list; a validation error names the option."""
    for name, value in values.items():
        if get_origin(cls.option_field(name).annotation) is list and isinstance(value, list):
            items = [item.strip() for given in value for item in given.split(",")]
            if items != [""] and "" in items:  # '' alone is the empty list
                typer.echo(f"error: {cls.flag(name)}: empty item in {','.join(value)!r}", err=True)
                raise typer.Exit(2)
            values[name] = [item for item in items if item]
    try:
        return cls(**values)
    except ValidationError as exc:
        typer.echo(f"error: {_message(cls, exc.errors()[0])}", err=True)
        raise typer.Exit(2) from None


def _message(cls: type[Settings], err: Any) -> str:
    """A validation error as one line naming its option (a nested one by its own flag)."""
    message = err["msg"].removeprefix("Value error, ")
    loc = [str(part) for part in err["loc"]]
    if loc and loc[0] in cls.model_fields and extra(cls.model_fields[loc[0]]).get("flatten"):
        nested = {
            inner: flat for flat, (_, readers) in cls.flattened().items() for _, inner in readers
        }
        inner = next((part for part in loc[1:] if part in nested), None)
        if inner is not None:
            return f"--{nested[inner].replace('_', '-')}: {message}"
        return f"{cls.flag(loc[0])}: {message}"
    if loc and loc[0] in cls.model_fields:  # else a check across options: it names them itself
        return f"{cls.flag(loc[0])}: {message}"
    return message


def settings_command(
    cls: type[Settings], job: Callable[[Any], None], doc: str
) -> Callable[..., None]:
    """A typer command whose options are `cls`'s fields; it validates them and runs `job`."""
    params = [
        _parameter(name, field, name in cls.cli_repeated)
        for name, field in cls.model_fields.items()
        if extra(field).get("cli", True) and not extra(field).get("flatten")
    ]
    params += _nested_parameters(cls) + _renamed_parameters(cls)
    params.sort(key=lambda p: p.default is not inspect.Parameter.empty)  # arguments first

    def command(ctx: typer.Context, **values: Any) -> None:
        # Only what the user typed: the settings' defaults fill the rest, and
        # `model_fields_set` tells a given option from a default (conflicting options).
        given = {
            name: value
            for name, value in values.items()
            if getattr(ctx.get_parameter_source(name), "name", None) != "DEFAULT"
        }
        renamed_notice(cls, given)
        job(to_settings(cls, given))

    context = inspect.Parameter(
        "ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context
    )
    params.insert(0, context)
    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.__doc__ = doc
    return command
