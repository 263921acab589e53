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


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _deliver_at_rate(backlog: Backlog, clock: _Clock, per_s: int, seconds: float, age_ms: int) -> None:
    """Hand over `per_s` messages a second in 10 ms batches, each `age_ms` old."""
    batch = max(1, per_s // 100)
    for _ in range(int(seconds * 100)):
        clock.now += 0.01
        backlog.waiting += batch  # admitted and delivered at the same pace
        backlog.delivered([_message(age_ms)] * batch)


def test_backlog_sheds_by_how_long_the_queue_would_take_not_by_its_count(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr("services.delivery.pressure.time.monotonic", clock)
    fast = Backlog(max_lag_ms=50, max_queue_ms=100, min_backlog=20)
    _deliver_at_rate(fast, clock, per_s=10_000, seconds=1, age_ms=80)
    assert 8_000 <= fast.rate <= 12_000
    fast.waiting = 500  # 50 ms of queue at 10,000/s: late, but it drains in time
    fast.check()
    slow = Backlog(max_lag_ms=50, max_queue_ms=100, min_backlog=20)
    _deliver_at_rate(slow, clock, per_s=500, seconds=1, age_ms=80)
    assert 400 <= slow.rate <= 600
    slow.waiting = 100  # 200 ms of queue at 500/s: the old count threshold (200) would admit it
    with pytest.raises(Busy):
        slow.check()
    slow.waiting = 30  # 60 ms: under the queue bound
    slow.check()
    assert (fast.shed, slow.shed) == (0, 1)


def test_backlog_is_not_fooled_by_a_quiet_spell_or_fresh_deliveries(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr("services.delivery.pressure.time.monotonic", clock)
    backlog = Backlog(max_lag_ms=50, max_queue_ms=100, min_backlog=20)
    _deliver_at_rate(backlog, clock, per_s=2_000, seconds=1, age_ms=5)
    rate = backlog.rate
    clock.now += 30.0  # nobody sends for half a minute
    backlog.waiting += 1
    backlog.delivered([_message(5)])
    assert backlog.rate == rate  # the idle half minute was not a window of 1 message in 30 s
    clock.now += 0.3
    backlog.waiting += 1
    backlog.delivered([_message(5)])
    assert 0.7 * rate <= backlog.rate < rate  # a slow window lowers it by a quarter, not to 3/s
    backlog.waiting = 1_000  # half a second of queue, but deliveries run 5 ms behind: no shedding
    backlog.check()
    backlog.waiting = 10  # under the floor, whatever the lag
    backlog.delivered([_message(400)])
    backlog.check()


def test_backlog_is_scraped_as_messages_and_seconds():
    from prometheus_client import REGISTRY

    backlog = Backlog()
    backlog.waiting, backlog.rate = 250, 1_000.0
    assert REGISTRY.get_sample_value("flare_delivery_backlog_messages") >= 250
    assert REGISTRY.get_sample_value("flare_delivery_queue_seconds") >= 0.25


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
