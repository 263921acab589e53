"""Load shedding decisions: the core's backlog (services.delivery.pressure) and the
gateway's gate (services.gateway.pressure)."""

from __future__ import annotations

import asyncio
import time

import pytest

from services.common.errors import Busy
from services.common.model import Message, now_ms
from services.delivery.pressure import Backlog
from services.gateway.pressure import SendGate


def _message(age_ms: int) -> Message:
    return Message(msg_id=1, client_msg_id="c", conversation_id="c2c:a:b", sender_id="a", sender_device="p",
                   content_type="text", body="x", created_at=now_ms() - age_ms)


def test_backlog_sheds_only_when_many_wait_and_delivery_runs_late():
    backlog = Backlog(max_lag_ms=100, min_backlog=10, max_backlog=1000)
    for _ in range(50):
        backlog.admitted()
    backlog.delivered([_message(5)])  # 49 wait, but deliveries are fresh
    backlog.check()
    backlog.delivered([_message(500)])  # 48 wait and deliveries are half a second late
    with pytest.raises(Busy) as caught:
        backlog.check()
    assert caught.value.code == "busy"
    assert 0.05 <= caught.value.details["retry_after"] <= 5
    backlog.delivered([_message(500)] * 45)  # worked down below min_backlog: open again
    backlog.check()
    assert backlog.shed == 1


def test_backlog_sheds_at_max_backlog_even_without_a_fresh_lag():
    backlog = Backlog(max_lag_ms=10_000, min_backlog=1, max_backlog=100)
    for _ in range(100):
        backlog.admitted()
    with pytest.raises(Busy):
        backlog.check()


async def test_gate_holds_off_after_the_core_said_busy_then_reopens():
    gate = SendGate(hold_off_s=0.05)
    gate.check()
    gate.core_busy(Busy("x", retry_after=1.0))
    with pytest.raises(Busy) as caught:
        gate.check()
    assert caught.value.details["retry_after"] == 1.0
    await asyncio.sleep(0.08)
    gate.check()


async def test_gate_sheds_while_its_event_loop_runs_late():
    gate = SendGate(max_loop_lag_ms=20, tick_s=0.005)
    gate.start()
    try:
        await asyncio.sleep(0.03)
        gate.check()
        for _ in range(6):  # block the loop: the ticker wakes up late
            time.sleep(0.06)
            await asyncio.sleep(0)
        with pytest.raises(Busy):
            gate.check()
    finally:
        await gate.stop()


async def test_gate_does_not_shed_after_one_long_pause_of_its_loop():
    # One stall (a GC pause, the process descheduled on a busy machine) that is over: the
    # sends read right after it must be admitted; a loop that stays late still sheds.
    gate = SendGate(max_loop_lag_ms=20, tick_s=0.005)
    gate.start()
    try:
        await asyncio.sleep(0.03)
        time.sleep(0.3)  # 15 times the limit, once
        await asyncio.sleep(0.001)  # the ticker wakes up (late) and measures
        await asyncio.sleep(0)
        assert gate.loop_lag_ms > 20  # it did see the pause
        gate.check()
        for _ in range(3):  # late again and again: sustained, so shed
            time.sleep(0.3)
            await asyncio.sleep(0.001)
            await asyncio.sleep(0)
        with pytest.raises(Busy):
            gate.check()
    finally:
        await gate.stop()
