"""Contract for the ConfigStore port (services/backends/configstore.py), run against every adapter.

Keys live under a random prefix so the suite can share one real etcd. Revisions are
compared relative to the store's current revision, never as absolute numbers.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator

import pytest

from services.backends.configstore import ConfigStore, WatchEvent, WatchEventType
from services.common.errors import CompactedError, Conflict, NotFound

PUT, DELETE = WatchEventType.PUT, WatchEventType.DELETE


async def _take(events: AsyncIterator[WatchEvent], n: int, *, timeout: float = 10.0) -> list[WatchEvent]:
    out = []
    for _ in range(n):
        out.append(await asyncio.wait_for(anext(events), timeout))
    return out


def _brief(events: list[WatchEvent]) -> list[tuple]:
    return [(e.type, e.key, e.value) for e in events]


@pytest.fixture
def prefix(unique) -> str:
    return f"/test-{unique}/"


async def test_is_a_configstore(configstore):
    assert isinstance(configstore, ConfigStore)


async def test_put_get_revisions_and_versions(configstore, prefix):
    key = prefix + "a"
    assert await configstore.get(key) is None
    before = await configstore.current_revision()
    r1 = await configstore.put(key, b"one")
    assert r1 == before + 1
    kv = await configstore.get(key)
    assert (kv.key, kv.value, kv.create_revision, kv.mod_revision, kv.version, kv.lease) == (key, b"one", r1, r1, 1, 0)
    r2 = await configstore.put(key, b"two")
    assert r2 == r1 + 1 == await configstore.current_revision()
    kv = await configstore.get(key)
    assert (kv.value, kv.create_revision, kv.mod_revision, kv.version) == (b"two", r1, r2, 2)
    # A write to another key moves the store revision, not this key's.
    r3 = await configstore.put(prefix + "b", b"x")
    assert r3 == r2 + 1
    assert (await configstore.get(key)).mod_revision == r2


async def test_get_prefix_sorted_with_revision(configstore, prefix):
    for name in ("b", "a", "c/d"):
        await configstore.put(prefix + name, name.encode())
    await configstore.put(prefix[:-1] + "x/sibling", b"outside")  # shares the text before the '/'
    kvs, revision = await configstore.get_prefix(prefix)
    assert [kv.key for kv in kvs] == [prefix + "a", prefix + "b", prefix + "c/d"]
    assert [kv.value for kv in kvs] == [b"a", b"b", b"c/d"]
    assert revision == await configstore.current_revision()
    assert await configstore.get_prefix(prefix + "zzz") == ([], revision)


async def test_a_value_as_large_as_the_largest_document_round_trips(configstore, prefix):
    # The largest filter-rules document validation accepts is ~7 MB of JSON; a store that
    # refused it would make the control plane's limits disagree (issue 10 item 3).
    value = b"w" * (7 * 1024 * 1024)
    await configstore.put(prefix + "big", value)
    assert (await configstore.get(prefix + "big")).value == value
    kvs, _ = await configstore.get_prefix(prefix)
    assert [kv.value for kv in kvs] == [value]


async def test_delete(configstore, prefix):
    key = prefix + "gone"
    await configstore.put(key, b"v")
    before = await configstore.current_revision()
    assert await configstore.delete(key) is True
    assert await configstore.current_revision() == before + 1
    assert await configstore.get(key) is None
    assert await configstore.delete(key) is False
    assert await configstore.current_revision() == before + 1  # deleting nothing is no write
    r = await configstore.put(key, b"again")
    kv = await configstore.get(key)
    assert (kv.create_revision, kv.version) == (r, 1)  # a new life for the key


async def test_compare_and_swap(configstore, prefix):
    key = prefix + "doc"
    r1 = await configstore.compare_and_swap(key, b"v1", expected_mod_revision=0)
    with pytest.raises(Conflict):
        await configstore.compare_and_swap(key, b"again", expected_mod_revision=0)  # exists now
    r2 = await configstore.compare_and_swap(key, b"v2", expected_mod_revision=r1)
    assert r2 > r1
    with pytest.raises(Conflict):
        await configstore.compare_and_swap(key, b"stale", expected_mod_revision=r1)
    kv = await configstore.get(key)
    assert (kv.value, kv.mod_revision, kv.version) == (b"v2", r2, 2)
    with pytest.raises(Conflict):
        await configstore.compare_and_swap(prefix + "absent", b"x", expected_mod_revision=r2)
    assert await configstore.get(prefix + "absent") is None


async def test_watch_replays_from_revision_then_goes_live(configstore, prefix):
    r1 = await configstore.put(prefix + "a", b"1")
    await configstore.put(prefix + "b", b"2")
    await configstore.put("/elsewhere-" + prefix.strip("/"), b"not mine")
    await configstore.delete(prefix + "a")
    events = configstore.watch_prefix(prefix, start_revision=r1)
    replayed = await _take(events, 3)
    assert _brief(replayed) == [(PUT, prefix + "a", b"1"), (PUT, prefix + "b", b"2"), (DELETE, prefix + "a", b"")]
    assert replayed[0].mod_revision == r1
    assert [e.mod_revision for e in replayed] == sorted(e.mod_revision for e in replayed)
    live = asyncio.create_task(_take(events, 2))
    r_live = await configstore.put(prefix + "c", b"3")
    await configstore.put(prefix + "c", b"4")
    got = await live
    assert _brief(got) == [(PUT, prefix + "c", b"3"), (PUT, prefix + "c", b"4")]
    assert got[0].mod_revision == r_live
    await events.aclose()  # type: ignore[attr-defined]


async def test_watch_from_middle_revision(configstore, prefix):
    await configstore.put(prefix + "k", b"1")
    r2 = await configstore.put(prefix + "k", b"2")
    await configstore.put(prefix + "k", b"3")
    events = configstore.watch_prefix(prefix, start_revision=r2)
    assert [e.value for e in await _take(events, 2)] == [b"2", b"3"]
    await events.aclose()  # type: ignore[attr-defined]


async def test_watch_from_now(configstore, prefix):
    await configstore.put(prefix + "old", b"before")
    events = configstore.watch_prefix(prefix)
    first = asyncio.create_task(anext(events))
    await asyncio.sleep(0.3)  # let the watch get established
    await configstore.put(prefix + "new", b"after")
    event = await asyncio.wait_for(first, 10)
    assert (event.type, event.key, event.value) == (PUT, prefix + "new", b"after")
    await events.aclose()  # type: ignore[attr-defined]


async def test_compaction_then_relist(configstore, prefix):
    r1 = await configstore.put(prefix + "a", b"1")
    await configstore.put(prefix + "a", b"2")
    r3 = await configstore.put(prefix + "b", b"3")
    await configstore.compact(r3)
    with pytest.raises(CompactedError) as caught:
        await anext(configstore.watch_prefix(prefix, start_revision=r1))
    assert caught.value.compact_revision == r3
    # The documented recovery: re-list, then watch from the list's revision + 1.
    kvs, revision = await configstore.get_prefix(prefix)
    assert {kv.key: kv.value for kv in kvs} == {prefix + "a": b"2", prefix + "b": b"3"}
    events = configstore.watch_prefix(prefix, start_revision=revision + 1)
    pending = asyncio.create_task(anext(events))
    await configstore.put(prefix + "c", b"4")
    event = await asyncio.wait_for(pending, 10)
    assert (event.key, event.value) == (prefix + "c", b"4")
    await events.aclose()  # type: ignore[attr-defined]


async def test_lease_expiry_deletes_keys(configstore, prefix):
    lease = await configstore.lease_grant(1)
    start = await configstore.current_revision()
    await configstore.put(prefix + "alive", b"instance-1", lease=lease)
    await configstore.put(prefix + "stays", b"no lease")
    assert (await configstore.get(prefix + "alive")).lease == lease
    events = configstore.watch_prefix(prefix, start_revision=start + 1)
    assert len(await _take(events, 2)) == 2
    deleted = await _take(events, 1, timeout=15)  # the lease runs out: nobody keeps it alive
    assert _brief(deleted) == [(DELETE, prefix + "alive", b"")]
    assert await configstore.get(prefix + "alive") is None
    assert (await configstore.get(prefix + "stays")).value == b"no lease"
    with pytest.raises(NotFound):
        await configstore.lease_keepalive(lease)
    await events.aclose()  # type: ignore[attr-defined]


async def test_lease_keepalive_and_revoke(configstore, prefix):
    lease = await configstore.lease_grant(2)
    await configstore.put(prefix + "a", b"1", lease=lease)
    await configstore.put(prefix + "b", b"2", lease=lease)
    for _ in range(5):  # 2.5 s > the 2 s TTL, survived only thanks to keepalives
        await asyncio.sleep(0.5)
        await configstore.lease_keepalive(lease)
    assert (await configstore.get(prefix + "a")) is not None
    before = await configstore.current_revision()
    await configstore.lease_revoke(lease)
    assert await configstore.get_prefix(prefix) == ([], before + 1)  # both keys, one revision


async def test_put_with_unknown_lease(configstore, prefix):
    with pytest.raises(NotFound):
        await configstore.put(prefix + "x", b"v", lease=987654321)


async def test_survives_reopen(configstore_opener, prefix):
    store = configstore_opener()
    await store.start()
    revision = await store.put(prefix + "kept", b"yes")
    await store.close()
    await store.close()
    again = configstore_opener()
    await again.start()
    await again.start()
    assert (await again.get(prefix + "kept")).mod_revision == revision
    assert await again.current_revision() == revision
    events = again.watch_prefix(prefix, start_revision=revision)
    assert _brief(await _take(events, 1)) == [(PUT, prefix + "kept", b"yes")]
    await events.aclose()  # type: ignore[attr-defined]


# -- SQLiteConfigStore only ---------------------------------------------------------------------

_WRITER = """
import asyncio, sys
from services.backends.embedded.sqliteconfig import SQLiteConfigStore

async def main():
    store = SQLiteConfigStore.from_url(sys.argv[1])
    await store.start()
    await store.put(sys.argv[2], b"from another process")
    await store.close()

asyncio.run(main())
"""


async def test_sqlite_watch_sees_other_process_writes(tmp_path):
    from services.backends.embedded.sqliteconfig import SQLiteConfigStore

    url = f"sqlite:///{tmp_path}/shared.db"
    store = SQLiteConfigStore.from_url(url)
    await store.start()
    start = await store.current_revision()
    events = store.watch_prefix("/flare/", start_revision=start + 1)
    pending = asyncio.create_task(anext(events))
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", _WRITER, url, "/flare/config/push")
    assert await process.wait() == 0
    event = await asyncio.wait_for(pending, 10)
    assert (event.type, event.key, event.value) == (PUT, "/flare/config/push", b"from another process")
    assert event.mod_revision == start + 1
    await events.aclose()  # type: ignore[attr-defined]
    await store.close()
