"""The stall watchdog (services.common.stalls) names the code that blocked the event loop."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from services.common import stalls
from services.common.stalls import StallWatchdog, watchdog_from_env


def _block_the_loop_for(seconds: float) -> None:
    # A busy wait in Python: the loop thread keeps running bytecode (and so drops the GIL
    # every switch interval), as a slow handler would.
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


async def test_a_stall_is_reported_with_the_blocking_function_and_its_length(caplog) -> None:
    watchdog = StallWatchdog(0.03)
    watchdog.start()
    try:
        await asyncio.sleep(0.05)  # a quiet loop first: nothing to report
        assert not watchdog.reports
        with caplog.at_level(logging.WARNING, logger="flare.stalls"):
            _block_the_loop_for(0.25)
            await asyncio.sleep(0.1)  # the loop runs again: the watchdog closes the report
    finally:
        watchdog.stop()
    assert len(watchdog.reports) == 1
    report = watchdog.reports[0]
    assert 0.2 <= report.duration_s <= 5.0
    assert report.samples >= 3
    assert "_block_the_loop_for" in report.top()
    assert any("event loop stalled" in r.getMessage() and "_block_the_loop_for" in r.getMessage()
               for r in caplog.records)


async def test_short_pauses_under_the_threshold_are_not_reported() -> None:
    watchdog = StallWatchdog(0.5)
    watchdog.start()
    try:
        for _ in range(5):
            _block_the_loop_for(0.02)
            await asyncio.sleep(0.02)
    finally:
        watchdog.stop()
    assert not watchdog.reports


async def test_the_number_of_distinct_stacks_and_reports_kept_is_bounded() -> None:
    watchdog = StallWatchdog(0.02, max_stacks=2, keep=3)
    watchdog.start()
    try:
        for _ in range(5):
            _block_the_loop_for(0.08)
            await asyncio.sleep(0.06)
    finally:
        watchdog.stop()
    assert len(watchdog.reports) == 3  # the last 3 of 5
    assert all(len(r.stacks) <= 2 for r in watchdog.reports)


@pytest.mark.parametrize("value", ["", "  "])
async def test_it_is_off_unless_the_environment_asks(monkeypatch, value) -> None:
    monkeypatch.setenv(stalls.ENV_VAR, value)
    assert watchdog_from_env() is None


async def test_a_bad_threshold_is_said_and_ignored(monkeypatch, caplog) -> None:
    monkeypatch.setenv(stalls.ENV_VAR, "fast")
    with caplog.at_level(logging.WARNING, logger="flare.stalls"):
        assert watchdog_from_env() is None
    assert "not a number" in caplog.text


async def test_the_environment_sets_the_threshold(monkeypatch) -> None:
    monkeypatch.setenv(stalls.ENV_VAR, "40")
    watchdog = watchdog_from_env()
    assert watchdog is not None
    try:
        assert watchdog.threshold_s == pytest.approx(0.04)
    finally:
        watchdog.stop()
