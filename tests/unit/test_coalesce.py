"""services.common.coalesce: concurrent calls share batches, each caller gets its answer."""

from __future__ import annotations

import asyncio

import pytest

from services.common.coalesce import Coalescer, ItemCoalescer


async def test_callers_arriving_during_a_call_share_the_next_one() -> None:
    seen: list[list[int]] = []
    release = asyncio.Event()

    async def lookup(items):
        seen.append(list(items))
        await release.wait()
        return {i: i * 10 for i in items}

    coalesce = Coalescer(lookup)
    first = asyncio.ensure_future(coalesce(1))
    await asyncio.sleep(0)  # the first batch is in flight with one item
    rest = [asyncio.ensure_future(coalesce(i)) for i in (2, 3, 4)]
    await asyncio.sleep(0)
    release.set()
    results = await asyncio.gather(first, *rest)
    assert seen == [[1], [2, 3, 4]]
    assert [r[i] for r, i in zip(results, (1, 2, 3, 4))] == [10, 20, 30, 40]


async def test_a_batch_is_at_most_max_batch_items() -> None:
    seen: list[int] = []

    async def lookup(items):
        seen.append(len(items))
        await asyncio.sleep(0)
        return set(items)

    coalesce = Coalescer(lookup, max_batch=3)
    results = await asyncio.gather(*(coalesce(i) for i in range(8)))
    assert all(i in r for i, r in enumerate(results))
    assert max(seen) <= 3 and sum(seen) == 8


async def test_a_failed_batch_fails_its_callers_and_the_next_batch_still_runs() -> None:
    calls = 0

    async def lookup(items):
        nonlocal calls
        calls += 1
        await asyncio.sleep(0)
        if calls == 1:
            raise OSError("disk went away")
        return list(items)

    coalesce = Coalescer(lookup)
    first = asyncio.ensure_future(coalesce("a"))
    await asyncio.sleep(0)
    second = asyncio.ensure_future(coalesce("b"))
    with pytest.raises(OSError, match="disk went away"):
        await first
    assert await second == ["b"]


# ItemCoalescer: one result per item, each caller its own.

class Script:
    """A batch call that records its batches, holds them while `gate` is clear, and answers
    each item by a rule: an int n -> n * 10, a str -> a ValueError naming it."""

    def __init__(self) -> None:
        self.batches: list[list[object]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.running = 0
        self.most_running = 0

    async def __call__(self, items):
        self.batches.append(list(items))
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            await self.gate.wait()
        finally:
            self.running -= 1
        return [ValueError(f"bad item {i}") if isinstance(i, str) else i * 10 for i in items]


async def test_light_load_is_one_item_per_call_made_at_once() -> None:
    script = Script()
    coalesce = ItemCoalescer(script)
    assert await coalesce(1) == 10
    assert await coalesce(2) == 20
    assert script.batches == [[1], [2]] and coalesce.batches == 2


async def test_the_first_caller_calls_in_its_own_task_without_a_loop_turn() -> None:
    seen_in: list[asyncio.Task | None] = []

    async def call(items):
        seen_in.append(asyncio.current_task())
        return list(items)

    coalesce = ItemCoalescer(call)
    caller = asyncio.ensure_future(coalesce(7))
    assert await caller == 7
    assert seen_in == [caller]


async def test_callers_during_a_call_share_the_next_and_each_gets_its_own_result_in_order() -> None:
    script = Script()
    script.gate.clear()
    coalesce = ItemCoalescer(script)
    first = asyncio.ensure_future(coalesce(1))
    await asyncio.sleep(0)
    rest = [asyncio.ensure_future(coalesce(i)) for i in range(2, 12)]
    await asyncio.sleep(0)
    script.gate.set()
    assert await asyncio.gather(first, *rest) == [i * 10 for i in range(1, 12)]
    assert script.batches == [[1], list(range(2, 12))]


async def test_one_failing_item_fails_only_its_caller() -> None:
    script = Script()
    script.gate.clear()
    coalesce = ItemCoalescer(script)
    first = asyncio.ensure_future(coalesce(1))
    await asyncio.sleep(0)
    mixed = [asyncio.ensure_future(coalesce(i)) for i in (2, "x", 4)]
    await asyncio.sleep(0)
    script.gate.set()
    results = await asyncio.gather(first, *mixed, return_exceptions=True)
    assert results[:2] == [10, 20] and results[3] == 40
    assert isinstance(results[2], ValueError) and str(results[2]) == "bad item x"
    assert script.batches == [[1], [2, "x", 4]]


async def test_a_failing_item_of_a_lone_call_raises_to_its_caller() -> None:
    coalesce = ItemCoalescer(Script())
    with pytest.raises(ValueError, match="bad item y"):
        await coalesce("y")
    assert await coalesce(3) == 30  # nothing left stuck


async def test_a_failed_call_fails_every_caller_of_that_batch_and_the_next_still_runs() -> None:
    calls: list[list[int]] = []
    gate = asyncio.Event()

    async def call(items):
        calls.append(list(items))
        await gate.wait()
        if len(calls) == 2:
            raise ConnectionError("peer went away")
        return list(items)

    coalesce = ItemCoalescer(call)
    first = asyncio.ensure_future(coalesce(1))
    await asyncio.sleep(0)
    second = [asyncio.ensure_future(coalesce(i)) for i in (2, 3)]
    await asyncio.sleep(0)
    gate.set()
    assert await first == 1
    for future in second:
        with pytest.raises(ConnectionError, match="peer went away"):
            await future
    assert await coalesce(4) == 4
    assert calls == [[1], [2, 3], [4]]


async def test_a_reply_of_the_wrong_length_fails_the_batch() -> None:
    async def call(items):
        await asyncio.sleep(0)
        return [1]

    coalesce = ItemCoalescer(call)
    results = await asyncio.gather(coalesce(1), coalesce(2), coalesce(3), return_exceptions=True)
    assert results[0] == 1
    assert all(isinstance(r, RuntimeError) and "2 items came back with 1" in str(r) for r in results[1:])


async def test_a_batch_is_at_most_max_batch_items() -> None:
    script = Script()
    script.gate.clear()
    coalesce = ItemCoalescer(script, max_batch=4)
    callers = [asyncio.ensure_future(coalesce(i)) for i in range(11)]
    await asyncio.sleep(0)
    script.gate.set()
    assert await asyncio.gather(*callers) == [i * 10 for i in range(11)]
    assert [len(b) for b in script.batches] == [1, 4, 4, 2]


async def test_a_batch_is_bounded_by_bytes_and_a_large_item_goes_alone() -> None:
    script = Script()
    script.gate.clear()
    coalesce = ItemCoalescer(script, max_bytes=10, size=lambda n: n)
    callers = [asyncio.ensure_future(coalesce(n)) for n in (1, 4, 5, 2, 30, 3)]
    await asyncio.sleep(0)
    script.gate.set()
    assert await asyncio.gather(*callers) == [10, 40, 50, 20, 300, 30]
    assert script.batches == [[1], [4, 5], [2], [30], [3]]


async def test_batches_in_flight_are_bounded() -> None:
    script = Script()
    script.gate.clear()
    coalesce = ItemCoalescer(script, max_in_flight=2, max_batch=3)
    first = asyncio.ensure_future(coalesce(0))
    await asyncio.sleep(0)
    rest = [asyncio.ensure_future(coalesce(i)) for i in range(1, 10)]
    for _ in range(5):
        await asyncio.sleep(0)
    # The second caller found a free slot and nobody waiting: it went at once, alone; the
    # rest wait for a slot.
    assert script.running == 2 and script.batches == [[0], [1]]
    script.gate.set()
    assert await asyncio.gather(first, *rest) == [i * 10 for i in range(10)]
    assert script.most_running == 2
    assert sorted(i for b in script.batches for i in b) == list(range(10))


async def test_a_caller_cancelled_while_waiting_is_not_sent() -> None:
    script = Script()
    script.gate.clear()
    coalesce = ItemCoalescer(script)
    first = asyncio.ensure_future(coalesce(1))
    await asyncio.sleep(0)
    gone = asyncio.ensure_future(coalesce(2))
    kept = asyncio.ensure_future(coalesce(3))
    await asyncio.sleep(0)
    gone.cancel()
    script.gate.set()
    assert await first == 10 and await kept == 30
    assert gone.cancelled()
    assert script.batches == [[1], [3]]


async def test_each_batch_size_is_reported() -> None:
    sizes: list[int] = []
    script = Script()
    script.gate.clear()
    coalesce = ItemCoalescer(script, on_batch=sizes.append)
    callers = [asyncio.ensure_future(coalesce(i)) for i in range(5)]
    await asyncio.sleep(0)
    script.gate.set()
    await asyncio.gather(*callers)
    assert sizes == [1, 4]


def test_bad_bounds_are_refused() -> None:
    with pytest.raises(ValueError):
        ItemCoalescer(Script(), max_batch=0)
    with pytest.raises(ValueError):
        ItemCoalescer(Script(), max_bytes=10)  # without a size
