"""The gateway's side of the delivery seam, without sockets: de-duplication from the
carried (conversation, seq), and device acks batched per event-loop tick."""

from __future__ import annotations

import asyncio

from services.common.errors import BackendUnavailable
from services.common.ids import DeviceId, UserId
from services.common.model import DeviceType
from services.delivery import DeliveredAcks
from services.gateway.connection import CLOSE_SLOW, ClientConnection


class _Socket:
    """The Link calls closing makes (services/gateway/links.py); the writer task (the real
    sending) is never started."""

    def __init__(self) -> None:
        self.closed_with: tuple[int, str] | None = None

    async def write_texts_drained(self, frames: list[bytes]) -> None:
        pass

    async def close(self, code: int, reason: str) -> None:
        self.closed_with = (code, reason)


def _connection(max_queue: int = 100) -> ClientConnection:
    return ClientConnection(_Socket(), user_id=UserId("bob"), device_id=DeviceId("phone"),  # type: ignore[arg-type]
                            device_type=DeviceType.MOBILE, connection_id="gw/bob", max_queue=max_queue)


async def test_a_connection_gets_each_seq_once_from_the_carried_fields_alone() -> None:
    conn = _connection()
    # Frames that are not JSON at all: the connection never looks inside.
    assert conn.push(b"first", "group:g", 2)
    assert conn.push(b"again", "group:g", 2)  # the same seq: dropped, the connection is alive
    assert conn.push(b"late", "group:g", 1)  # lower, late: dropped (the device syncs the gap)
    assert conn.push(b"other conversation", "group:h", 1)
    assert conn.push(b"ack", "", 0) and conn.push(b"ack", "", 0)  # not messages: every one goes out
    assert conn.push(b"next", "group:g", 3)
    assert list(conn._queue) == [b"first", b"other conversation", b"ack", b"ack", b"next"]


async def test_a_full_queue_closes_the_connection_and_reports_it_gone() -> None:
    conn = _connection(max_queue=2)
    assert conn.push(b"1", "group:g", 1) and conn.push(b"2", "group:g", 2)
    assert conn.push(b"3", "group:g", 3) is False
    assert conn.closed and not conn.push(b"4", "group:g", 4)
    for _ in range(3):
        await asyncio.sleep(0)
    assert conn.link.closed_with is not None and conn.link.closed_with[0] == CLOSE_SLOW


async def test_acks_noted_in_one_tick_are_reported_once_per_user_and_conversation() -> None:
    reports: list[tuple[str, str, list[int]]] = []

    async def report(user_id: str, conversation_id: str, seqs) -> None:
        reports.append((user_id, conversation_id, list(seqs)))

    acks = DeliveredAcks(report)
    for seq in (1, 2, 3):
        acks.note("bob", "group:g", seq)
    acks.note("carol", "group:g", 1)
    assert reports == []  # nothing until the tick ends
    for _ in range(3):
        await asyncio.sleep(0)
    assert sorted(reports) == [("bob", "group:g", [1, 2, 3]), ("carol", "group:g", [1])]
    acks.note("bob", "group:g", 4)  # the next tick is a batch of its own
    for _ in range(3):
        await asyncio.sleep(0)
    assert reports[-1] == ("bob", "group:g", [4])


async def test_with_report_many_a_tick_is_one_call_and_a_failed_one_does_not_wedge_the_next() -> None:
    single: list[tuple] = []
    ticks: list[list[tuple[str, str, list[int]]]] = []

    async def report(user_id: str, conversation_id: str, seqs) -> None:
        single.append((user_id, conversation_id))

    async def report_many(reports) -> None:
        ticks.append(list(reports))
        if len(ticks) == 1:
            raise BackendUnavailable("router away")

    acks = DeliveredAcks(report, report_many=report_many)
    for seq in (1, 2):
        acks.note("bob", "group:g", seq)
    acks.note("carol", "c2c:alice:carol", 7)
    for _ in range(3):
        await asyncio.sleep(0)
    assert ticks == [[("bob", "group:g", [1, 2]), ("carol", "c2c:alice:carol", [7])]]
    acks.note("bob", "group:g", 3)  # the failed call was logged; the next tick goes out
    for _ in range(3):
        await asyncio.sleep(0)
    assert ticks[-1] == [("bob", "group:g", [3])]
    assert single == []  # never one call per (user, conversation) when report_many is given


async def test_ack_batching_is_bounded_and_survives_a_failed_report() -> None:
    reports: list[list[int]] = []

    async def report(user_id: str, conversation_id: str, seqs) -> None:
        reports.append(list(seqs))
        raise BackendUnavailable("router away")

    acks = DeliveredAcks(report, max_pending=3)
    for seq in range(1, 6):
        acks.note("bob", "group:g", seq)
    for _ in range(3):
        await asyncio.sleep(0)
    assert reports == [[1, 2, 3]]  # beyond the bound an ack is dropped, not queued forever
    acks.note("bob", "group:g", 6)  # a failed report did not wedge the batcher
    for _ in range(3):
        await asyncio.sleep(0)
    assert reports[-1] == [6]


async def test_with_several_in_flight_a_tick_s_reports_run_at_once_and_a_failure_stays_its_own() -> None:
    started: list[str] = []
    everyone_started = asyncio.Event()

    async def report(user_id: str, conversation_id: str, seqs) -> None:
        started.append(user_id)
        if len(started) == 3:
            everyone_started.set()
        await asyncio.wait_for(everyone_started.wait(), 2)  # one at a time would never get here
        if user_id == "carol":
            raise BackendUnavailable("router away")

    acks = DeliveredAcks(report, in_flight=8)
    for user in ("bob", "carol", "dave"):
        acks.note(user, "group:g", 1)
    for _ in range(10):
        await asyncio.sleep(0)
    assert sorted(started) == ["bob", "carol", "dave"] and everyone_started.is_set()


async def test_one_in_flight_reports_one_after_the_other() -> None:
    running = 0
    most = 0

    async def report(user_id: str, conversation_id: str, seqs) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0)
        running -= 1

    acks = DeliveredAcks(report)
    for user in ("bob", "carol", "dave"):
        acks.note(user, "group:g", 1)
    for _ in range(20):
        await asyncio.sleep(0)
    assert most == 1
