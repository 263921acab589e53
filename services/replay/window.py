"""The replay window: exact, half-open [since, until) in UTC milliseconds.

Times are ISO 8601 with a `Z` or an explicit offset (`2026-12-01T10:00:00+05:30` is 04:30Z;
KAFKA-5644 was a tool that dropped such offsets). A time without a zone is refused rather
than guessed: on a server in another zone a guess silently shifts the window by hours.
Milliseconds are computed with integer arithmetic, so `...:00.001Z` never rounds to `...:00Z`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from services.common.errors import InvalidInput

__all__ = ["Window", "parse_utc_ms", "format_utc_ms"]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def parse_utc_ms(text: str, *, field: str) -> int:
    """ISO 8601 with a zone -> ms since the epoch (UTC). Sub-millisecond digits are refused:
    log timestamps are milliseconds, and truncating would move a bound."""
    value = text.strip()
    if value.endswith(("z", "Z")):
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{field}: {text!r} is not an ISO 8601 time (e.g. 2026-12-01T10:00:00Z)",
                           field=field) from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidInput(f"{field}: {text!r} has no time zone; add Z or an offset such as +05:30",
                           field=field)
    delta = moment - _EPOCH
    if delta.microseconds % 1000:
        raise InvalidInput(f"{field}: {text!r} is finer than a millisecond", field=field)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def format_utc_ms(ms: int) -> str:
    moment = _EPOCH + timedelta(milliseconds=ms)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


@dataclass(frozen=True, slots=True)
class Window:
    since_ms: int
    until_ms: int

    def __post_init__(self) -> None:
        if self.until_ms <= self.since_ms:
            raise InvalidInput("--until must be after --since (the window is [since, until))", field="until")

    @classmethod
    def parse(cls, since: str, until: str) -> Window:
        return cls(parse_utc_ms(since, field="since"), parse_utc_ms(until, field="until"))

    def __contains__(self, timestamp_ms: int) -> bool:
        return self.since_ms <= timestamp_ms < self.until_ms

    def to_dict(self) -> dict[str, object]:
        return {"since": format_utc_ms(self.since_ms), "until": format_utc_ms(self.until_ms),
                "since_ms": self.since_ms, "until_ms": self.until_ms}
