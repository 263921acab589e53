"""A live store on real backends, traffic with chosen log timestamps, and rows to lose.

`Deployment` runs a StoreService consumer (the partitions' live owner) on either the
embedded file log + SQLite or Kafka + PostgreSQL, produces messages the way the store's
accept path does (Message wire, keyed by conversation) but with explicit log timestamps,
and deletes MessageDB rows behind the store's back with the database's own client.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sqlite3
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from services.backends.embedded.memcache import MemoryCache
from services.backends.registry import open_log, open_messagedb
from services.common import codec
from services.common.config import StoreConfig
from services.common.ids import ConversationId, DeviceId, UserId
from services.common.model import Message
from services.replay import CheckpointStore, ReplayReader, Window, make_plan, new_run_id, run_replay
from services.store import StoreService

_ids = itertools.count(10_000_000)


@dataclass
class Deployment:
    log_url: str
    db_url: str
    config: StoreConfig
    checkpoints: Path
    log: object = None
    db: object = None
    store: StoreService | None = None
    sent: list[Message] = field(default_factory=list)
    _groups: set[str] = field(default_factory=set)

    async def start(self) -> None:
        self.log = open_log(self.log_url)
        self.db = open_messagedb(self.db_url)
        await self.log.start()
        await self.db.start()
        await self.db.migrate()
        await self.start_store()

    async def start_store(self) -> None:
        self.store = StoreService(log=self.log, db=self.db, cache=MemoryCache(), config=self.config)
        await self.store.start()

    async def stop_store(self) -> None:
        if self.store is not None:
            await self.store.stop()
            self.store = None

    async def close(self) -> None:
        await self.stop_store()
        await self.db.close()
        await self.log.close()

    async def send(self, conversation: str, *, timestamp_ms: int | None = None, sender: str = "alice") -> Message:
        if conversation.startswith("group:") and conversation not in self._groups:
            await self.db.add_members(conversation, [sender, "bob"])  # a group the way the gateway makes one
            self._groups.add(conversation)
        n = next(_ids)
        message = Message(msg_id=n, client_msg_id=f"c-{n}", conversation_id=ConversationId(conversation),
                          sender_id=UserId(sender), sender_device=DeviceId("phone"), content_type="text",
                          body={"text": f"m{n}"}, created_at=timestamp_ms or 1)
        await self.log.produce(self.config.topic, codec.dumps(message.to_wire()), key=conversation.encode(),
                               timestamp_ms=timestamp_ms)
        self.sent.append(message)
        return message

    async def settled(self, timeout: float = 60.0) -> None:
        """Wait until the live store has committed everything produced so far."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            end = await self.log.end_offsets(self.config.topic)
            committed = await self.log.committed_offsets(self.config.consumer_group, self.config.topic)
            if all(committed.get(p, 0) >= o for p, o in end.items()):
                return
            assert loop.time() < deadline, f"store did not catch up: end {end}, committed {committed}"
            await asyncio.sleep(0.1)

    async def seqs(self) -> dict[int, tuple[str, int]]:
        """msg_id -> (conversation, seq) for every stored message of what this test sent."""
        out: dict[int, tuple[str, int]] = {}
        for conversation in sorted({m.conversation_id for m in self.sent}):
            after = 0
            while True:
                page = await self.db.messages_after(conversation, after, limit=500)
                if not page:
                    break
                for m in page:
                    assert m.msg_id not in out, f"msg_id {m.msg_id} stored twice"
                    out[m.msg_id] = (m.conversation_id, m.seq)
                after = page[-1].seq
        return out

    async def consistency(self) -> list[dict]:
        """`flarectl check consistency`'s findings (seq gaps and duplicates, log vs rows, ...)."""
        from services.archive.archiver import ArchivePolicy
        from services.archive.consistency import LogScope, check_consistency
        from services.backends.registry import open_objectstore

        objects = open_objectstore(f"file://{self.checkpoints.parent / 'objects'}")
        await objects.start()
        try:
            report = await check_consistency(self.db, objects, ArchivePolicy(),
                                             log=LogScope(self.log, self.config.topic, self.config.consumer_group))
        finally:
            await objects.close()
        return [f.to_dict() for f in report.findings]

    async def delete(self, msg_ids: list[int]) -> None:
        """Lose rows behind the store's back, with the database's own client."""
        if self.db_url.startswith("sqlite"):
            def run() -> None:
                with contextlib.closing(sqlite3.connect(self.db_url.removeprefix("sqlite:///"))) as conn:
                    conn.executemany("DELETE FROM messages WHERE msg_id = ?", [(i,) for i in msg_ids])
                    conn.commit()
            await asyncio.to_thread(run)
        else:
            import asyncpg

            conn = await asyncpg.connect(self.db_url.replace("postgresql://", "postgres://", 1))
            try:
                async with conn.transaction():  # both halves of a row, as a restore from a dump loses them
                    await conn.execute("DELETE FROM messages WHERE msg_id = ANY($1::bigint[])", msg_ids)
                    await conn.execute("DELETE FROM message_keys WHERE msg_id = ANY($1::bigint[])", msg_ids)
            finally:
                await conn.close()

    async def replay(self, window: Window, *, dry_run: bool = False, conversation: str | None = None,
                     run_id: str | None = None, resume: bool = False, **kwargs):
        store = CheckpointStore(self.checkpoints)
        tally = None
        if resume:
            plan, tally, _ = store.load(run_id)
        run_id = run_id or new_run_id()
        async with ReplayReader(self.log, self.config.topic, run_id) as reader:
            if not resume:
                plan = await make_plan(reader, self.log, run_id=run_id, topic=self.config.topic, target="store",
                                       window=window, live_group=self.config.consumer_group,
                                       conversation=conversation)
            return await run_replay(plan, reader=reader, log=self.log, db=self.db, dry_run=dry_run,
                                    checkpoints=store, tally=tally, **kwargs)


def assert_consistent(seqs: dict[int, tuple[str, int]]) -> None:
    """Per conversation: seqs unique (a msg_id once is checked by `seqs`)."""
    by_conversation: dict[str, list[int]] = {}
    for conversation, seq in seqs.values():
        by_conversation.setdefault(conversation, []).append(seq)
    for conversation, values in by_conversation.items():
        assert len(values) == len(set(values)), f"{conversation}: a seq is used twice"


def unique_config() -> StoreConfig:
    suffix = uuid.uuid4().hex[:8]
    return StoreConfig(topic=f"replay-{suffix}", consumer_group=f"store-{suffix}", partitions=2, max_batch=50)
