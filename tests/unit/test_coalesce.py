"""services.common.coalesce: concurrent calls share batches, each caller gets its answer."""

from __future__ import annotations

import asyncio

import pytest

from services.common.coalesce import Coalescer


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
