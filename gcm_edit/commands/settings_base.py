"""The settings machinery every command shares: flags, nested configs shown as flat options,
old option names kept for one release, and the "given but not read" refusal.

A field whose `json_schema_extra` has `flatten: True` holds a config model (or a tagged
union of them, told apart by `kind`): its own fields are options of the command (`--edit
distilled --edit-rank 2`), lifted into the nested config here, before validation, so the
Python API (`ExportSettings(edit="distilled", edit_rank=2)`) and the command line agree.
"""

from __future__ import annotations

from typing import Any, ClassVar, get_args

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic.fields import FieldInfo

HIDDEN: Any = {"cli": False}


def unmeasured(why: str) -> dict:
    """`json_schema_extra` of an option that cannot move a run's measured figures (`why`): left
    out of the key a recorded seed spread is found by (`Settings.measured_options`)."""
    return {"unmeasured": why}


WRITTEN = unmeasured("where and in which formats the result is written")


def extra(field: FieldInfo) -> dict:
    return field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}


def members(field: FieldInfo) -> list[type[BaseModel]]:
    """The config classes a flattened field may hold (one, or a tagged union's members)."""
    options = get_args(field.annotation) or (field.annotation,)
    return [c for c in options if isinstance(c, type) and issubclass(c, BaseModel)]


def flat_name(cls: type[BaseModel], name: str) -> str:
    """A nested field's option name: its `flag` (`edit-rank`) as a field name (`edit_rank`)."""
    return extra(cls.model_fields[name]).get("flag", name).replace("-", "_")


def kind_of(cls: type[BaseModel]) -> str | None:
    field = cls.model_fields.get("kind")
    return None if field is None else field.default


class Settings(BaseModel):
    # NaN and inf are refused as such ("finite number"), before any range check
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    # Fields given as a repeatable option on the command line (a list in, see validators).
    cli_repeated: ClassVar[frozenset[str]] = frozenset()
    # Old option names, kept one release: old field → (new field, value; None: the same value).
    # A class's own are added to its bases'.
    renamed: ClassVar[dict[str, tuple[str, Any]]] = {}

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        merged: dict[str, tuple[str, Any]] = {}
        for base in reversed(cls.__mro__):
            merged.update(base.__dict__.get("renamed", {}))
        cls.renamed = merged

    @classmethod
    def flattened(cls) -> dict[str, tuple[str, list[tuple[type[BaseModel], str]]]]:
        """Flat option name → (the nested field holding it, (config, field) of each config
        that reads it)."""
        found: dict[str, tuple[str, list[tuple[type[BaseModel], str]]]] = {}
        for parent, field in cls.model_fields.items():
            if not extra(field).get("flatten"):
                continue
            for config in members(field):
                for name in config.model_fields:
                    if name != "kind":
                        flat = flat_name(config, name)
                        found.setdefault(flat, (parent, []))[1].append((config, name))
        return found

    @classmethod
    def option_field(cls, name: str) -> FieldInfo:
        """The field behind option `name`: the command's own, a nested one, or a renamed
        one's new field."""
        if name in cls.renamed:
            name = cls.renamed[name][0]
        if name in cls.model_fields:
            return cls.model_fields[name]
        config, inner = cls.flattened()[name][1][0]
        return config.model_fields[inner]

    @classmethod
    def measured_options(cls) -> set[str]:
        """The options a run's figures can depend on: all but those marked `unmeasured`."""
        return {n for n, f in cls.model_fields.items() if "unmeasured" not in extra(f)}

    @classmethod
    def flag(cls, name: str) -> str:
        """The command-line flag of field `name` (`k_percent` is `--k`), nested ones too."""
        field = cls.model_fields.get(name)
        renamed = extra(field).get("flag", name) if field is not None else name
        return "--" + renamed.replace("_", "-")

    @model_validator(mode="before")
    @classmethod
    def _lift(cls, data: Any) -> Any:
        """Old names to new ones, then flat options into their nested config."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for old, (new, value) in cls.renamed.items():
            if old not in data:
                continue
            given = data.pop(old)
            if value is not None and not given:  # `--no-learn-scales`: nothing asked
                continue
            value = given if value is None else value
            if new in data and data[new] != value:
                raise ValueError(
                    f"{cls.flag(old)} (now {cls.flag(new)} {_shown(value)}) contradicts "
                    f"{cls.flag(new)} {_shown(data[new])}: give one of them"
                )
            data[new] = value
        for parent, field in cls.model_fields.items():
            if extra(field).get("flatten"):
                data = cls._lift_into(parent, field, data)
        return data

    @classmethod
    def _lift_into(cls, parent: str, field: FieldInfo, data: dict) -> dict:
        configs = members(field)
        value = data.get(parent, field.get_default(call_default_factory=True))
        if isinstance(value, str):  # `--edit distilled`: the kind alone
            value = {"kind": value}
        if isinstance(value, BaseModel):
            value = value.model_dump(exclude_unset=True) | {"kind": kind_of(type(value))}
        chosen = next((c for c in configs if kind_of(c) == value.get("kind")), configs[0])
        names = {flat_name(chosen, n): n for n in chosen.model_fields if n != "kind"}
        flattened = cls.flattened()
        for flat in [f for f, (p, _) in flattened.items() if f in data and p == parent]:
            if flat not in names:
                readers = [f"{cls.flag(parent)} {kind_of(c)}" for c, _ in flattened[flat][1]]
                needs = " or ".join(readers)
                raise ValueError(
                    f"--{flat.replace('_', '-')} is only read with {needs}: drop it, or add "
                    f"{readers[0]}"
                )
            value[names[flat]] = data.pop(flat)
        if kind_of(chosen) is None:
            value.pop("kind", None)
        return {**data, parent: value}

    @model_validator(mode="after")
    def _no_repeats(self) -> Settings:
        """`--doses 2,2`: a list option's item given twice is a typo, never a request."""
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, list):
                twice = [v for i, v in enumerate(value) if v in value[:i]]
                if twice:
                    shown = f"{twice[0]:g}" if isinstance(twice[0], float) else twice[0]
                    raise ValueError(f"{self.flag(name)}: {shown} is given twice")
        return self

    def _given_without(self, fields: tuple[str, ...], needed: bool, needs: str) -> None:
        """Refuse options the user gave (not defaults) that this run would not read."""
        given = [name for name in fields if name in self.model_fields_set]
        if given and not needed:
            raise ValueError(
                f"{self.flag(given[0])} is only read with {needs}: drop it, or add {needs}"
            )


def _shown(value: Any) -> str:
    """An option's value as typed: a list comma-separated."""
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)
