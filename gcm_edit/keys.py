"""Cache keys derived from what a stage computes from, never listed by hand.

A cached stage describes its inputs as a `StageConfig`: the options it reads and the
fingerprints of what it is given (model, pairs, plans, teacher answers). Its key hashes every
field; a field that cannot change the result is marked `unkeyed("why")` and left out.
tests/commands/test_stage_keys.py changes every field of every StageConfig subclass and
checks the key follows, so a new option cannot silently reuse an old entry.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from gcm_edit.cache import stable_hash
from gcm_edit.version import __version__


def unkeyed(default: Any, why: str) -> Any:
    """A field left out of the key: it cannot change what the stage computes (`why`)."""
    return Field(default, json_schema_extra={"unkeyed": why})


class StageConfig(BaseModel):
    """Everything one cached stage's output depends on."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)
    stages: ClassVar[list[type[StageConfig]]] = []

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        StageConfig.stages.append(cls)

    @classmethod
    def keyed_fields(cls) -> list[str]:
        return [
            name
            for name, field in cls.model_fields.items()
            if not (
                isinstance(field.json_schema_extra, dict) and "unkeyed" in field.json_schema_extra
            )
        ]

    def key(self) -> str:
        """Nested values (dataclasses, models) are dumped field by field, so each counts."""
        fields = self.model_dump(mode="json", include=set(self.keyed_fields()))
        return stable_hash(__version__, type(self).__name__, fields)
