"""PrefixWatch (services/backends/prefixwatch.py), the one watch-and-mirror loop over the
ConfigStore port that the topology, the revocations and the control plane's config/ share:
list once, apply every event after the listed revision, re-list when the watch is lost,
and back off from a store that keeps failing."""

from __future__ import annotations

import asyncio

import pytest

from services.backends.configstore import WatchEvent, WatchEventType
from services.backends.prefixwatch import PrefixWatch
from services.common.errors import BackendUnavailable

PREFIX = "/flare/test/"


class Mirror:
    """What a caller keeps: the prefix's keys, and a log of how it learnt them."""

    def __init__(self, store) -> None:
        self.store = store
        self.values: dict[str, bytes] = {}
        self.lists: list[int] = []  # the revision of each list
        self.events: list[tuple[str, str, int]] = []

    async def relist(self) -> int:
        kvs, revision = await self.store.get_prefix(PREFIX)
        self.values = {kv.key: kv.value for kv in kvs}
        self.lists.append(revision)
        return revision

    async def apply(self, event: WatchEvent) -> None:
        self.events.append((event.type.value, event.key, event.mod_revision))
        if event.type is WatchEventType.PUT:
            self.values[event.key] = event.value
        else:
            self.values.pop(event.key, None)


async def _eventually(predicate, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


async def test_start_lists_then_applies_every_later_event_until_stopped(configstore):
    await configstore.put(PREFIX + "a", b"1")
    await configstore.put("/flare/elsewhere/x", b"not ours")
    mirror = Mirror(configstore)
    watch = PrefixWatch(configstore, PREFIX, relist=mirror.relist, apply=mirror.apply, what="test")
    await watch.start()
    try:
        assert mirror.values == {PREFIX + "a": b"1"} and len(mirror.lists) == 1  # right before start returns
        put_b = await configstore.put(PREFIX + "b", b"2")
        await configstore.delete(PREFIX + "a")
        await _eventually(lambda: mirror.values == {PREFIX + "b": b"2"})
        assert mirror.events == [("put", PREFIX + "b", put_b), ("delete", PREFIX + "a", put_b + 1)]
    finally:
        await watch.stop()
    await configstore.put(PREFIX + "c", b"3")
    await asyncio.sleep(0.2)
    assert PREFIX + "c" not in mirror.values  # stopped means stopped
    await watch.stop()  # and a second stop is harmless


async def test_a_compacted_watch_revision_is_repaired_by_listing_again(configstore):
    mirror = Mirror(configstore)
    stale = await mirror.relist()  # the mirror as a process saw it before it went away
    await configstore.put(PREFIX + "a", b"1")
    await configstore.put(PREFIX + "b", b"2")
    await configstore.delete(PREFIX + "a")
    await configstore.compact(await configstore.current_revision())  # the events it missed are gone
    watch = PrefixWatch(configstore, PREFIX, relist=mirror.relist, apply=mirror.apply, what="test")
    follower = asyncio.create_task(watch.follow(stale))
    try:
        await _eventually(lambda: len(mirror.lists) == 2)
        assert mirror.values == {PREFIX + "b": b"2"} and mirror.events == []  # from the list, not events
        put_c = await configstore.put(PREFIX + "c", b"3")
        await _eventually(lambda: PREFIX + "c" in mirror.values)
        assert mirror.events == [("put", PREFIX + "c", put_c)]  # the watch resumed after the new list
    finally:
        follower.cancel()
        with pytest.raises(asyncio.CancelledError):
            await follower


class FailingWatches:
    """The real store, but every watch fails as an unreachable store's does."""

    def __init__(self, store) -> None:
        self._store = store
        self.watches = 0

    async def get_prefix(self, prefix: str):
        return await self._store.get_prefix(prefix)

    def watch_prefix(self, prefix: str, *, start_revision: int | None = None):
        self.watches += 1
        return self._fail()

    async def _fail(self):
        raise BackendUnavailable("store unreachable", service="configstore")
        yield  # an async generator, as a real watch is


async def test_a_failing_store_is_retried_with_a_growing_delay_not_a_busy_loop(configstore, caplog):
    await configstore.put(PREFIX + "a", b"1")
    failing = FailingWatches(configstore)
    mirror = Mirror(failing)
    watch = PrefixWatch(failing, PREFIX, relist=mirror.relist, apply=mirror.apply, what="test")
    await watch.start()
    try:
        await asyncio.sleep(1.0)  # delays 0.2 + 0.4 fit, the next 0.8 does not
    finally:
        await watch.stop()
    assert failing.watches == 3
    assert len(mirror.lists) == 3  # the first list and one after each of the two waits
    assert mirror.values == {PREFIX + "a": b"1"}  # a failing watch loses nothing it had
    assert [r.getMessage() for r in caplog.records if "watch failed" in r.getMessage()][:2] == [
        "test watch failed (store unreachable); re-listing in 0.2s",
        "test watch failed (store unreachable); re-listing in 0.4s"]


async def test_a_failing_first_list_reaches_the_caller_and_starts_nothing(configstore):
    async def relist() -> int:
        raise BackendUnavailable("store unreachable", service="configstore")

    async def apply(event: WatchEvent) -> None:
        raise AssertionError("no watch may run")

    watch = PrefixWatch(configstore, PREFIX, relist=relist, apply=apply, what="test")
    with pytest.raises(BackendUnavailable):
        await watch.start()
    await configstore.put(PREFIX + "a", b"1")
    await asyncio.sleep(0.1)
    await watch.stop()
