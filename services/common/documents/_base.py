"""Shared pieces of the document models: strict models, durations, times, error paths."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from services.common.durations import duration_seconds
from services.common.errors import InvalidInput

__all__ = ["Model", "Duration", "TimeOfDay", "invalid", "field_path"]

_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class Model(BaseModel):
    # Unknown fields are refused: a typo ("max_retires") must not be silently ignored.
    model_config = ConfigDict(extra="forbid", frozen=True)


def _duration(value: object) -> float:
    """Seconds, from a number of seconds or a string like "500ms", "60s", "24h", "30d"."""
    if isinstance(value, bool):
        raise ValueError("must be a duration (seconds or e.g. '30s', '24h')")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and (parsed := duration_seconds(value)) is not None:
        seconds = parsed
    else:
        raise ValueError(f"{value!r} is not a duration (seconds or e.g. '30s', '24h', '30d')")
    if seconds <= 0:
        raise ValueError("must be a positive duration")
    return int(seconds) if seconds.is_integer() else seconds


def _time_of_day(value: object) -> str:
    if not isinstance(value, str) or not _TIME.match(value.strip()):
        raise ValueError(f"{value!r} is not a time of day HH:MM (00:00-23:59)")
    return value.strip()


Duration = Annotated[int | float, BeforeValidator(_duration)]
TimeOfDay = Annotated[str, BeforeValidator(_time_of_day)]


def field_path(loc: tuple[int | str, ...], *, root: str = "spec") -> str:
    parts = [root] if root else []
    for part in loc:
        text = str(part)
        # pydantic names union members and validator wrappers in locations; the operator
        # wants the path into their file only.
        if text.startswith(("function-", "str", "int", "float")) or text[:1].isupper():
            continue
        parts.append(text)
    return ".".join(parts)


def invalid(kind: str, exc: ValidationError, *, root: str = "spec") -> InvalidInput:
    errors = [{"field": field_path(e["loc"], root=root), "error": e["msg"].removeprefix("Value error, ")}
              for e in exc.errors()]
    unique = list({(e["field"], e["error"]): e for e in errors}.values())
    summary = "; ".join(f"{e['field']}: {e['error']}" for e in unique[:5])
    return InvalidInput(f"invalid {kind}: {summary}", field=unique[0]["field"], errors=unique)
