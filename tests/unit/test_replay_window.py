"""Replay bounds: ISO 8601 with offsets (KAFKA-5644), exact milliseconds, half-open."""

from __future__ import annotations

import pytest

from services.common.errors import InvalidInput
from services.replay import Window, format_utc_ms, parse_utc_ms


def test_offsets_are_converted_not_dropped():
    utc = parse_utc_ms("2026-12-01T04:30:00Z", field="since")
    assert parse_utc_ms("2026-12-01T10:00:00+05:30", field="since") == utc
    assert parse_utc_ms("2026-11-30T23:30:00-05:00", field="since") == utc
    assert utc == 1_796_099_400_000
    assert format_utc_ms(utc + 7) == "2026-12-01T04:30:00.007Z"


def test_milliseconds_are_exact():
    assert parse_utc_ms("2026-12-01T04:30:00.001Z", field="since") - parse_utc_ms("2026-12-01T04:30:00Z", field="since") == 1
    assert parse_utc_ms("1969-12-31T23:59:59.999Z", field="since") == -1
    with pytest.raises(InvalidInput, match="finer than a millisecond"):
        parse_utc_ms("2026-12-01T04:30:00.0005Z", field="until")


def test_the_window_is_half_open():
    window = Window(1000, 2000)
    assert 1000 in window and 1999 in window
    assert 999 not in window and 2000 not in window
    with pytest.raises(InvalidInput, match="--until must be after --since"):
        Window(2000, 2000)
