"""message-store: accept messages into the log, then sequence and persist them.

Accept path (ARCHITECTURE §6): reserve the dedup key (sender, client_msg_id) -> msg_id in
the cache BEFORE producing (`reserve`), produce to the log keyed by conversation (so one
partition holds a conversation), mark the key stored, and only then report STORED. A
resend finds the key and keeps the original msg_id: if it is only reserved (the produce
failed, timed out or the process died), the message is produced again under that same
msg_id, and the consumer persists a msg_id once however often the log holds it. On a
cache miss (expired, or the cache lost its data in a restart) the MessageDB is asked; and
until the log's backlog from before this instance started is persisted, a miss waits for
it, since an unpersisted original would otherwise look new.

Persist path: one consumer per partition (the log's consumer group guarantees a single
owner) is the only writer of seq for the conversations in it. For each batch it
  1. drops messages the MessageDB already knows (same msg_id: a re-consumed record keeps
     its seq; same sender+client_msg_id with another msg_id: a duplicate that slipped past
     the cache — it never gets a seq),
  2. assigns seq = counter + 1 in log order; counters come from the MessageDB's max seq the
     first time a conversation is seen after a partition was (re)assigned, never from a cache,
  3. writes the MessageDB, then the L0 cache, then commits the log offset,
  4. hands the batch to the delivery client (services.delivery: in-process, or a router's
     Deliver RPC), awaiting it before the next batch. (Overlapping the two, with persisted
     batches queued for one delivery task, was measured and gave nothing: both wait for the
     same busy CPUs, bench/results/2026-12-03c.)
A crash between 3's write and commit re-consumes the batch; step 1 makes that harmless.
A revoke waits for the batch being written (1–3), so the next owner never reads the
MessageDB in the middle of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence

from services.backends.cache import Cache
from services.backends.log import Log, LogConsumer, LogRecord, TopicPartition
from services.backends.messagedb import MessageDB
from services.common import codec
from services.common.coalesce import Coalescer
from services.common.config import StoreConfig
from services.common.documents import load_spec
from services.common.errors import BackendError, BackendUnavailable, Conflict, FlareError, InvalidInput
from services.common.health import Faults
from services.common.metrics import (
    DEDUP_HITS, LOG_LAG, STAGE_COMMIT, STAGE_DELIVER, STAGE_MARK_STORED, STAGE_PERSIST, STAGE_PRODUCE,
    STAGE_RESERVE, STORE_BATCH,
)
from services.common.model import Message, conversation_kind
from services.delivery.client import DeliveryClient
from services.delivery.keys import dedup_key, recent_key
from services.delivery.membership import Membership

from .types import AcceptResult, Reservation
from services.common.retry import RetryPolicy

__all__ = ["StoreService"]

log = logging.getLogger("flare.store")

_MAX_COUNTERS = 100_000  # conversations whose seq counter is kept between batches


def _report_death(task: asyncio.Task) -> None:
    # The consumer runs until stop(); ending any other way means nothing is persisted any
    # more, which must not go unnoticed in the logs.
    if not task.cancelled() and task.exception() is not None:
        log.critical("store consumer stopped", exc_info=task.exception())


_RESERVED, _STORED = b"p:", b"s:"
_BACKLOG_WAIT_S = 15.0
_STOP_DELIVERY_S = 5.0  # at stop, how long the batch being pushed may take to finish


def _parse_reservation(raw: bytes) -> tuple[int, bool]:
    if raw.startswith(_RESERVED):
        return int(raw[2:]), False
    if raw.startswith(_STORED):
        return int(raw[2:]), True
    return int(raw), True  # a hint written before reservations existed


class StoreService:
    """Satisfies StoreClient (services.store.client) in-process.

    `delivery`: where persisted batches go; None for an instance that only accepts.
    """

    def __init__(
        self, *, log: Log, db: MessageDB, cache: Cache, config: StoreConfig,
        delivery: DeliveryClient | None = None,
        retry: RetryPolicy = RetryPolicy(max_attempts=100, base_delay=0.05, max_delay=2.0),
    ) -> None:
        self._log = log
        self._db = db
        # reserve() asks the MessageDB about every new send: concurrent sends share one query.
        self._find_msg_ids = Coalescer(db.find_msg_ids)
        self._cache = cache
        self._config = config
        self._delivery = delivery
        self._membership = Membership(db)
        self._retry = retry
        self._inflight: dict[tuple[str, str], asyncio.Future[AcceptResult]] = {}
        self._counters: dict[str, int] = {}
        self._consumer: LogConsumer | None = None
        self._task: asyncio.Task | None = None
        self._delivering: asyncio.Task | None = None  # the last batch handed to delivery
        self._lag_task: asyncio.Task | None = None
        self.tiering: object | None = None  # the last applied tiering policy
        self.persisted = 0  # messages written by this instance's consumer (for health/status)
        self._backlog_end: dict[int, int] | None = None  # end offsets when this instance started
        self._persisting = asyncio.Lock()  # held while a batch is sequenced and written
        self._generation = 0  # bumped by every revoke
        self._faults = Faults("store", logging.getLogger("flare.store"))  # `log` is the Log here

    async def apply_config(self, kind: str, document: dict) -> int:
        """`tiering`: l0_ttl applies to every message persisted from now on; the rest of the
        policy (L1 retention, L2 target, compression, sharding) is kept in `tiering` for the
        archival job that moves L1 to L2."""
        if kind != "tiering":
            raise InvalidInput(f"the store does not consume {kind!r} documents")
        policy = load_spec("tiering", document)
        self._config = self._config.model_copy(update={"l0_ttl_s": int(policy.l0_ttl)})
        self.tiering = policy
        return 1

    async def start(self, *, consume: bool = True) -> None:
        await self._log.create_topic(self._config.topic, partitions=self._config.partitions,
                                     retention_ms=self._config.log_retention_s * 1000,
                                     retention_bytes=self._config.log_retention_bytes)
        # Partitions that held records when this instance started (none: nothing to wait for).
        end = await self._log.end_offsets(self._config.topic)
        self._backlog_end = {p: offset for p, offset in end.items() if offset > 0} or None
        if consume:
            self._consumer = self._log.consumer(
                self._config.consumer_group, [self._config.topic],
                on_assign=self._on_assign, on_revoke=self._on_revoke,
            )
            await self._consumer.start()
            self._task = asyncio.create_task(self._consume_forever(), name="store-consumer")
            self._task.add_done_callback(_report_death)
            self._lag_task = asyncio.create_task(self._report_lag_forever(), name="store-lag")

    async def stop(self) -> None:
        if self._lag_task is not None:
            self._lag_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._lag_task
            self._lag_task = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._delivering is not None:  # stored and committed: let its push finish, briefly
            with contextlib.suppress(asyncio.CancelledError, asyncio.TimeoutError):
                await asyncio.wait_for(self._delivering, _STOP_DELIVERY_S)
            self._delivering = None
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    # -- accept ---------------------------------------------------------------------
    async def reserve(self, message: Message) -> Reservation:
        """Reserve message.msg_id for (sender, client_msg_id), or return the id it already has."""
        started = time.perf_counter()
        try:
            return await self._reserve(message)
        finally:
            STAGE_RESERVE.observe(time.perf_counter() - started)

    async def _reserve(self, message: Message) -> Reservation:
        key = dedup_key(message.sender_id, message.client_msg_id)
        cached = await self._cache.get(key)
        if cached is not None:
            DEDUP_HITS.labels("cache").inc()
            msg_id, stored = _parse_reservation(cached)
            return Reservation(msg_id, duplicate=True, stored=stored)
        found = await self._stored_as(message)
        if found is None and await self._wait_for_backlog():
            found = await self._stored_as(message)
        if found is not None:
            DEDUP_HITS.labels("db").inc()
            await self._cache_stored(key, found)
            return Reservation(found, duplicate=True, stored=True)
        if await self._cache.set_nx(key, _RESERVED + str(message.msg_id).encode(), ttl=self._config.dedup_ttl_s):
            return Reservation(message.msg_id, duplicate=False, stored=False)
        raced = await self._cache.get(key)  # a concurrent resend reserved first: its id wins
        if raced is None:
            raise BackendUnavailable("the dedup reservation vanished; retry")
        msg_id, stored = _parse_reservation(raced)
        return Reservation(msg_id, duplicate=True, stored=stored)

    async def _stored_as(self, message: Message) -> int | None:
        """The msg_id the MessageDB holds this message under (in L1 or archived), if any."""
        return (await self._find_msg_ids(message)).get(message.msg_id)

    async def _wait_for_backlog(self) -> bool:
        """Until the log's records from before this instance started are persisted, a
        (sender, client_msg_id) unknown to cache and MessageDB may still be in them. True
        if we had to wait (look again), False if the backlog was already done."""
        end = self._backlog_end
        if not end:
            return False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _BACKLOG_WAIT_S
        while True:
            try:
                committed = await self._log.committed_offsets(self._config.consumer_group, self._config.topic)
            except FlareError:  # the group coordinator is not ready yet: ask again until the deadline
                committed = {}
            if all(committed.get(p, 0) >= offset for p, offset in end.items()):
                self._backlog_end = None
                return True
            if loop.time() > deadline:
                raise BackendUnavailable("the store is still persisting the log's backlog; retry the same client_msg_id")
            await asyncio.sleep(0.1)

    async def _cache_stored(self, key: str, msg_id: int) -> None:
        try:
            await self._cache.set(key, _STORED + str(msg_id).encode(), ttl=self._config.dedup_ttl_s)
        except FlareError:
            # The log has the message: it is STORED. Failing here would make the client
            # resend a message that is already in the log (the MessageDB check catches it).
            log.warning("dedup key not marked stored for %s", key, exc_info=True)

    async def accept(self, message: Message) -> AcceptResult:
        """Durably log the message once per (sender, client_msg_id); return its msg_id.
        A message reserved earlier (`reserve`) is produced under the reserved msg_id."""
        key = (message.sender_id, message.client_msg_id)
        pending = self._inflight.get(key)
        if pending is not None:  # the same resend while the first is still being logged
            DEDUP_HITS.labels("inflight").inc()
            result = await asyncio.shield(pending)
            return AcceptResult(result.msg_id, duplicate=True)
        reservation = await self._reserve(message)
        if reservation.stored:
            return AcceptResult(reservation.msg_id, duplicate=True)
        # The caller's own reservation (router.admit) is not a duplicate; another message's
        # reserved, unconfirmed id is: the resend is produced under that id.
        duplicate = reservation.duplicate and reservation.msg_id != message.msg_id
        message.msg_id = reservation.msg_id
        future: asyncio.Future[AcceptResult] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            started = time.perf_counter()
            await self._log.produce(
                self._config.topic, codec.dumps(message.to_wire()), key=message.conversation_id.encode(),
            )
            produced = time.perf_counter()
            STAGE_PRODUCE.observe(produced - started)
            result = AcceptResult(message.msg_id, duplicate=duplicate)
            await self._cache_stored(dedup_key(*key), message.msg_id)
            STAGE_MARK_STORED.observe(time.perf_counter() - produced)
            future.set_result(result)
            return result
        except BaseException as exc:
            # The reservation stays: the record may be in the log after all, and a resend
            # must produce it again under the same msg_id rather than a new one.
            future.set_exception(exc if isinstance(exc, Exception) else FlareError("cancelled"))
            future.exception()  # mark retrieved: no "never retrieved" warning if nobody waits
            raise
        finally:
            del self._inflight[key]

    # -- persist ----------------------------------------------------------------------
    async def _on_assign(self, partitions: set[TopicPartition]) -> None:
        # Counters are only trusted while this instance owns the partition without a break.
        self._counters.clear()
        log.info("store owns partitions %s", sorted(p.partition for p in partitions))

    async def _on_revoke(self, partitions: set[TopicPartition]) -> None:
        # Two writers of one conversation's seqs must never overlap: if the new owner read
        # the MessageDB while this instance was still inserting a batch, both would
        # sequence the same messages from different counters (the MessageDB keeps one row
        # per msg_id, the other seqs would be delivered as phantoms and leave gaps). So the
        # revoke waits for a batch being written, and a batch not yet written is dropped.
        async with self._persisting:
            self._generation += 1
            self._counters.clear()

    def problems(self) -> list[str]:
        return self._faults.reasons()

    async def _consume_forever(self) -> None:
        assert self._consumer is not None
        commit_failures = 0
        while True:
            try:
                batches = await self._consumer.getmany(timeout_ms=500, max_records=self._config.max_batch)
            except FlareError as exc:  # the broker is away: the consumer reconnects by itself
                self._faults.fail("fetch", f"cannot fetch from the log ({exc}); retrying")
                await asyncio.sleep(0.5)
                continue
            self._faults.recover("fetch")
            if not batches:
                continue
            records = [r for recs in batches.values() for r in recs]
            generation = self._generation
            attempt = 0
            stored: list[Message] | None = None
            while True:
                try:
                    async with self._persisting:  # a revoke waits for this batch to be written
                        if generation != self._generation:
                            break  # revoked meanwhile: the new owner persists it (and sequences it)
                        started = time.perf_counter()
                        stored = await self._persist(records)
                        STAGE_PERSIST.observe(time.perf_counter() - started)
                    break
                except Exception as exc:
                    # The DB is down (or a driver failed in a way its adapter did not foresee):
                    # do not commit, do not skip; wait and try the same batch.
                    attempt += 1
                    delay = self._retry.delay(min(attempt, 10))
                    if not isinstance(exc, BackendError):
                        log.warning("store batch failed unexpectedly", exc_info=exc)
                    self._faults.fail("persist", f"cannot persist a batch ({exc}); retrying with back-off")
                    self._counters.clear()
                    await asyncio.sleep(delay)
            self._faults.recover("persist")
            if stored is None:
                log.warning("store batch dropped: its partitions were revoked before it was persisted")
                await self._rewind(batches)
                continue
            try:
                started = time.perf_counter()
                await self._consumer.commit({tp: recs[-1].offset + 1 for tp, recs in batches.items()})
                STAGE_COMMIT.observe(time.perf_counter() - started)
            except FlareError as exc:
                # A rebalance took the partitions (or the broker is away, or the disk is
                # full). Whoever consumes them next re-reads this batch, finds it stored with
                # its seqs and delivers it; delivering here too would push it to the devices
                # twice. If they are still ours, rewind so that "whoever" is this instance —
                # after a back-off: a commit that fails for want of disk fails again at once.
                self._counters.clear()
                await self._rewind(batches)
                if isinstance(exc, Conflict):  # a rebalance: routine, and the new owner is ready
                    log.info("store commit refused (%s); the batch is re-read and delivered then", exc)
                    continue
                commit_failures += 1
                self._faults.fail("commit", f"cannot commit log offsets ({exc}); the batch is re-read")
                await asyncio.sleep(self._retry.delay(min(commit_failures, 10)))
                continue
            commit_failures = 0
            self._faults.recover("commit")
            if stored and self._delivery is not None:
                # The next batch is fetched and persisted while this one is pushed: a push
                # is a round trip to the gateways, and in turn the two took 15 ms at 700
                # msg/s on the 2-core VM. Batches are still handed over one at a time and in
                # order (a conversation's seqs reach a device in order), and a slow gateway
                # still slows this consumer down: it waits here for the batch before.
                previous = self._delivering
                if previous is not None:
                    await asyncio.shield(previous)  # a stop lets it finish (stop())
                self._delivering = asyncio.create_task(self._deliver(stored), name="store-deliver")

    async def _deliver(self, stored: list[Message]) -> None:
        assert self._delivery is not None
        try:
            started = time.perf_counter()
            await self._delivery.deliver(stored)
            STAGE_DELIVER.observe(time.perf_counter() - started)
        except Exception:  # delivery problems never stop persistence
            log.exception("delivery hand-off failed")

    async def _rewind(self, batches: dict[TopicPartition, list[LogRecord]]) -> None:
        assert self._consumer is not None
        for tp, recs in batches.items():
            with contextlib.suppress(FlareError):  # no longer ours: the new owner reads it
                await self._consumer.seek(tp, recs[0].offset)

    async def _persist(self, records: Sequence[LogRecord]) -> list[Message]:
        messages: list[Message] = []
        for record in records:
            try:
                messages.append(Message.from_wire(codec.loads(record.value)))
            except (ValueError, KeyError, TypeError):
                log.error("skipping undecodable record %s/%s@%s", record.topic, record.partition, record.offset)
        if not messages:
            return []
        STORE_BATCH.observe(len(messages))
        # One lookup covers L1 and archived messages (their keys stay). Only a record read
        # again under its own msg_id needs its row: in L1 it is delivered again with its
        # seq; archived, it is a duplicate like a resend. Storing either again would fail
        # the uniqueness guard on every retry and stop this consumer for good.
        taken = await self._db.find_msg_ids(messages)
        again = [m for m in messages if taken.get(m.msg_id) == m.msg_id]
        rows = await self._db.find_existing(again) if again else {}
        fresh: list[Message] = []
        redeliver: list[Message] = []
        seen_keys: set[tuple[str, str]] = set()
        for message in messages:
            key = (message.sender_id, message.client_msg_id)
            stored_as = taken.get(message.msg_id)
            if stored_as == message.msg_id:
                row = rows.get(message.msg_id)
                if row is not None:
                    redeliver.append(row)  # re-consumed after a crash: keep its seq
                else:
                    DEDUP_HITS.labels("archived").inc()
                continue
            if stored_as is not None:  # a resend under another msg_id
                DEDUP_HITS.labels("db").inc()
                continue
            if key in seen_keys:  # duplicate within this very batch
                DEDUP_HITS.labels("db").inc()
                continue
            seen_keys.add(key)
            fresh.append(message)
        await self._allocate_seqs(fresh)
        if fresh:
            await self._db.insert_messages(fresh)
            self.persisted += len(fresh)
            try:
                await self._cache.set_many(
                    {recent_key(m.conversation_id, m.seq): codec.dumps(m.to_wire()) for m in fresh},
                    ttl=self._config.l0_ttl_s,
                )
            except FlareError:  # L0 is an optimisation; L1 has the data
                log.warning("L0 cache write failed", exc_info=True)
        return redeliver + fresh

    async def _allocate_seqs(self, messages: list[Message]) -> None:
        if len(self._counters) > _MAX_COUNTERS:
            # Forgetting is always safe between batches: a counter is re-read from the
            # MessageDB's max seq, which has every seq this consumer handed out.
            self._counters.clear()
        unknown = sorted({m.conversation_id for m in messages if m.conversation_id not in self._counters})
        if unknown:
            recovered = await self._db.max_seqs(unknown)
            for conversation_id in unknown:
                self._counters[conversation_id] = recovered.get(conversation_id, 0)
            # A batch early in a conversation's life holds many new ones: one write for all.
            new_c2c = [c for c in unknown if recovered.get(c, 0) == 0 and conversation_kind(c) == "c2c"]
            if new_c2c:
                await self._membership.record_c2c_many(new_c2c)
        for message in messages:
            seq = self._counters[message.conversation_id] + 1
            self._counters[message.conversation_id] = seq
            message.seq = seq

    async def _report_lag_forever(self, interval_s: float = 5.0) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.lag()
            except FlareError:
                log.debug("could not read log lag", exc_info=True)

    async def lag(self) -> dict[int, int]:
        """Per partition: records in the log that the store has not committed yet."""
        end = await self._log.end_offsets(self._config.topic)
        committed = await self._log.committed_offsets(self._config.consumer_group, self._config.topic)
        lag = {p: max(0, end[p] - committed.get(p, 0)) for p in end}
        for partition, value in lag.items():
            LOG_LAG.labels(str(partition)).set(value)
        return lag
