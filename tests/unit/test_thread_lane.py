"""ThreadLane: the SQLite adapters' writer and reader thread (services/backends/embedded/_lane.py)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from services.backends.embedded._lane import ThreadLane


async def test_jobs_run_in_order_on_one_other_thread():
    lane = ThreadLane("t-order")
    seen: list[tuple[int, str]] = []
    results = await asyncio.gather(*(lane.run(lambda i=i: seen.append((i, threading.current_thread().name)) or i * 2)
                                     for i in range(200)))
    assert results == [i * 2 for i in range(200)]
    assert [i for i, _ in seen] == list(range(200))
    assert {name for _, name in seen} == {"t-order"} != {threading.current_thread().name}
    await lane.close()


async def test_an_error_reaches_the_awaiting_task_and_the_lane_goes_on():
    lane = ThreadLane("t-error")
    with pytest.raises(ZeroDivisionError):
        await lane.run(lambda: 1 / 0)
    assert await lane.run(lambda: "still here") == "still here"
    await lane.close()


async def test_a_job_cancelled_before_it_started_is_skipped():
    lane = ThreadLane("t-cancel")
    gate = threading.Event()
    ran: list[str] = []
    blocker = lane.run(gate.wait)
    skipped = lane.run(lambda: ran.append("skipped"))
    skipped.cancel()
    after = lane.run(lambda: ran.append("after"))
    gate.set()
    await blocker
    await after
    assert ran == ["after"]
    await lane.close()


async def test_close_runs_what_was_given_then_refuses_more():
    lane = ThreadLane("t-close")
    gate = threading.Event()
    ran: list[int] = []
    first = lane.run(gate.wait)
    queued = [lane.run(lambda i=i: ran.append(i)) for i in range(5)]
    closing = asyncio.ensure_future(lane.close())
    await asyncio.sleep(0.01)
    assert not closing.done()  # the first job still holds the thread
    gate.set()
    await closing
    await asyncio.gather(first, *queued)
    assert ran == [0, 1, 2, 3, 4] and lane.closed
    with pytest.raises(RuntimeError, match="closed"):
        lane.run(lambda: None)
    await lane.close()  # idempotent
