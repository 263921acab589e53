"""An ack is in the cursor at once, also while the flush that writes it is on its way.

The sync service buffers acked ranges and writes them every 0.2 s. A sync that lands
while that write runs must still see them: otherwise a page the device acked a moment
ago is served again (seen in a whole-suite run: a second page starting over at 101).
"""

from __future__ import annotations

import asyncio

from tests.integration.grpc_stack import embedded_stack


async def test_a_sync_during_the_cursor_write_sees_the_acks_it_carries(tmp_path) -> None:
    async with embedded_stack(tmp_path) as stack:
        sync, db = stack.sync, stack.db
        entered, release = asyncio.Event(), asyncio.Event()
        write = db.advance_cursors

        async def slow_write(updates):  # the real write, held until the sync has looked
            entered.set()
            await release.wait()
            return await write(updates)

        db.advance_cursors = slow_write
        sync.note_ack("bob", "phone", "c2c:alice:bob", seq=200, after_seq=0)
        flushing = asyncio.create_task(sync.flush())
        await entered.wait()
        during = await sync.cursors("bob", "phone")
        release.set()
        await flushing
        after = await sync.cursors("bob", "phone")
        stored = await db.get_cursors("bob", "phone")
    assert during["c2c:alice:bob"].seq == 200
    assert after["c2c:alice:bob"].seq == 200
    assert stored["c2c:alice:bob"].seq == 200  # and the write itself went through


async def test_a_failed_cursor_write_keeps_the_acks_visible_and_retries_them(tmp_path) -> None:
    async with embedded_stack(tmp_path) as stack:
        sync, db = stack.sync, stack.db
        write = db.advance_cursors
        calls = 0

        async def failing_once(updates):
            nonlocal calls
            calls += 1
            if calls == 1:
                raise OSError("disk went away")
            return await write(updates)

        db.advance_cursors = failing_once
        sync.note_ack("bob", "phone", "c2c:alice:bob", seq=5, after_seq=0)
        await sync.flush()
        assert (await sync.cursors("bob", "phone"))["c2c:alice:bob"].seq == 5
        await sync.flush()
        stored = await db.get_cursors("bob", "phone")
    assert calls == 2 and stored["c2c:alice:bob"].seq == 5
