"""message-sync: per-device cursors, incremental sync, recall / delete / read as events.

Cursors live server-side (MessageDB) so any device of a user converges: a reconnecting
device gets, per conversation, the messages after its seq cursor and the events after its
event cursor (docs/protocol.md, "Cursors").

A cursor is the top of the contiguous prefix the device has proven it holds. Each ack
arrives as a range (after, to] the device holds (the gateway knows which frame carried the
acked seq: one live message, or a whole sync page); the cursor moves to `to` only if it
already reaches `after`, so an ack beyond a gap is ignored and the gap is offered again by
the next sync. Device acks arrive at message rate, so ranges are merged and written in
batches; a cursor that lags after a crash only means a few messages are sent again, which
devices recognise by seq.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping

from services.backends.cache import Cache
from services.backends.messagedb import CursorUpdate, MessageDB, MessageReader
from services.common import codec
from services.common.config import SyncConfig
from services.common.errors import Forbidden, NotFound
from services.common.ids import ConversationId, DeviceId, UserId
from services.common.model import ConversationEvent, Cursor, Message, MessageFlags, SyncType, now_ms
from services.delivery import Fanout, Membership
from services.delivery.keys import recent_key

from .ranges import apply_ranges, merge_range
from .types import SyncResult

__all__ = ["SyncService"]

log = logging.getLogger("flare.sync")

_READ_ACK_SPAN = 1000  # newest messages a read looks at to find their senders' devices
_BUFFER_LIMIT = 200_000  # (device, conversation) keys buffered; beyond it the buffer is flushed


class SyncService:
    """Satisfies SyncClient (services.sync.client) in-process."""

    def __init__(self, *, db: MessageDB, cache: Cache, fanout: Fanout, membership: Membership,
                 config: SyncConfig, flush_interval_s: float = 0.2, history: MessageReader | None = None) -> None:
        self._db = db
        # L1, or L1 and the L2 archive (services/archive/reader.py) when the wiring gives it.
        self._history: MessageReader = history or db
        self._cache = cache
        self._fanout = fanout
        self._membership = membership
        self._config = config
        self._flush_interval = flush_interval_s
        # (user, device, conversation) -> ([seq runs], [event runs])
        self._buffer: dict[tuple[str, str, str], tuple[list[list[int]], list[list[int]]]] = {}
        # A cursor read and a cursor write never overlap (see cursors()): reads run side by
        # side, a flush waits for them and holds new ones off until its write is done.
        self._write_lock = asyncio.Lock()
        self._reads = 0
        self._no_reads = asyncio.Event()
        self._no_reads.set()
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._flush_forever(), name="sync-cursor-flush")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()

    # -- cursors --------------------------------------------------------------------
    def note_ack(self, user_id: str, device_id: str, conversation_id: str, *, seq: int = 0, event_id: int = 0,
                 after_seq: int | None = None, after_event_id: int | None = None) -> None:
        """The device holds seqs (after_seq, seq] and events (after_event_id, event_id].
        Without `after_*` it holds that one message (after = seq - 1) or event."""
        key = (user_id, device_id, conversation_id)
        runs = self._buffer.get(key)
        if runs is None:
            runs = self._buffer[key] = ([], [])
        if seq > 0:
            merge_range(runs[0], seq - 1 if after_seq is None else after_seq, seq)
        if event_id > 0:
            merge_range(runs[1], event_id - 1 if after_event_id is None else after_event_id, event_id)
        if len(self._buffer) > _BUFFER_LIMIT:
            asyncio.get_running_loop().create_task(self.flush())

    async def flush(self) -> None:
        async with self._write_lock:
            await self._no_reads.wait()
            await self._write_buffered()

    async def _write_buffered(self) -> None:
        if not self._buffer:
            return
        buffered, self._buffer = self._buffer, {}
        updates: list[CursorUpdate] = []
        for (user_id, device_id, conversation_id), (seq_runs, event_runs) in buffered.items():
            ids = (UserId(user_id), DeviceId(device_id), ConversationId(conversation_id))
            updates += [CursorUpdate(*ids, seq=to, after_seq=after) for after, to in seq_runs]
            updates += [CursorUpdate(*ids, event_id=to, after_event_id=after) for after, to in event_runs]
        try:
            await self._db.advance_cursors(updates)
        except Exception:
            log.warning("cursor flush failed; %d ranges will be retried", len(updates), exc_info=True)
            for (user_id, device_id, conversation_id), (seq_runs, event_runs) in buffered.items():
                for after, to in seq_runs:
                    self.note_ack(user_id, device_id, conversation_id, seq=to, after_seq=after)
                for after, to in event_runs:
                    self.note_ack(user_id, device_id, conversation_id, event_id=to, after_event_id=after)

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(self._flush_interval)
            await self.flush()

    async def cursors(self, user_id: str, device_id: str) -> dict[str, Cursor]:
        """The stored cursors with the ranges still buffered applied (as the flush will).

        Never during a flush's write: the flush takes the buffer before writing it, so a
        read in between (or one that read the rows just before the write committed) would
        see those ranges neither stored nor buffered, and a device's ack would not count
        for the sync it sent right after (docs/protocol.md §7)."""
        async with self._write_lock:  # no write under way, and none starts until this read is done
            self._reads += 1
            self._no_reads.clear()
        try:
            stored = await self._db.get_cursors(user_id, device_id)
            for (u, d, conversation_id), (seq_runs, event_runs) in self._buffer.items():
                if u == user_id and d == device_id:
                    cursor = stored.setdefault(conversation_id, Cursor())
                    cursor.seq = apply_ranges(cursor.seq, seq_runs)
                    cursor.event_id = apply_ranges(cursor.event_id, event_runs)
            return stored
        finally:
            self._reads -= 1
            if not self._reads:
                self._no_reads.set()

    # -- sync -------------------------------------------------------------------------
    async def sync(
        self, user_id: str, device_id: str, *, cursors: Mapping[str, Cursor] | None = None, limit: int | None = None,
    ) -> SyncResult:
        """One page per conversation with news. Given cursors are read positions only:
        they never change the stored ones (acks do). Each page says the range it covers,
        `after` (exclusive) to `next` (inclusive), for seq and event_id."""
        limit = min(limit or self._config.page_limit, self._config.page_limit)
        server = await self.cursors(user_id, device_id)
        if cursors:
            server.update(cursors)
        conversations = await self._db.conversations_of(user_id)
        max_seqs = await self._db.max_seqs(conversations) if conversations else {}
        out: SyncResult = {}
        for conversation_id in conversations:
            cursor = server.get(conversation_id, Cursor())
            hidden_seq, hidden_event = await self._membership.visibility(conversation_id, user_id)
            if cursor.seq < hidden_seq or cursor.event_id < hidden_event:
                # What came before this member joined is not theirs to see (history "joined"),
                # so the device needs none of it: its stored cursor starts after it.
                stored = Cursor(max(cursor.seq, hidden_seq), max(cursor.event_id, hidden_event))
                if conversation_id not in (cursors or {}):
                    self.note_ack(user_id, device_id, conversation_id, seq=stored.seq, after_seq=0,
                                  event_id=stored.event_id, after_event_id=0)
                cursor = stored
            messages: list[Message] = []
            if max_seqs.get(conversation_id, 0) > cursor.seq:
                messages = await self._messages_after(
                    conversation_id, cursor.seq, max_seqs[conversation_id], limit + 1)
            events = await self._db.events_after(conversation_id, cursor.event_id, user_id=user_id, limit=limit + 1)
            if not messages and not events:
                continue
            has_more = len(messages) > limit or len(events) > limit
            messages, events = messages[:limit], events[:limit]
            next_cursor = Cursor(seq=messages[-1].seq if messages else cursor.seq,
                                 event_id=events[-1].event_id if events else cursor.event_id)
            if messages:
                deleted = await self._db.deleted_seqs(conversation_id, user_id, from_seq=messages[0].seq,
                                                      to_seq=messages[-1].seq)
                messages = [m for m in messages if m.seq not in deleted]
            out[conversation_id] = {
                "messages": [_visible(m) for m in messages],
                "events": [e.to_wire() for e in events],
                "has_more": has_more,
                "max_seq": max_seqs.get(conversation_id, 0),
                "after": {"seq": cursor.seq, "event_id": cursor.event_id},
                "next": {"seq": next_cursor.seq, "event_id": next_cursor.event_id},
            }
        return out

    async def _messages_after(self, conversation_id: str, after_seq: int, max_seq: int, limit: int) -> list[Message]:
        """L0 (the recent-message cache) when it holds the whole range, else L1."""
        last = min(max_seq, after_seq + limit)
        keys = [recent_key(conversation_id, s) for s in range(after_seq + 1, last + 1)]
        cached = await self._cache.get_many(keys) if keys else []
        if cached and all(raw is not None for raw in cached):
            return [Message.from_wire(codec.loads(raw)) for raw in cached]
        return await self._history.messages_after(conversation_id, after_seq, limit=limit)

    # -- changes to stored messages -------------------------------------------------------
    async def recall(self, user_id: str, msg_id: int) -> ConversationEvent:
        message = await self._require(msg_id, user_id)
        if message.sender_id != user_id:
            raise Forbidden("only the sender can recall a message")
        if message.recalled:  # idempotent: the first recall's event already told everyone
            return ConversationEvent(
                conversation_id=message.conversation_id, sync_type=SyncType.RECALL, msg_id=msg_id,
                seq=message.seq, actor_id=UserId(user_id), timestamp=now_ms())
        if now_ms() - message.created_at > self._config.recall_window_s * 1000:
            raise Forbidden(f"the recall window of {self._config.recall_window_s}s has passed")
        await self._db.set_flags(msg_id, message.flags | MessageFlags.RECALLED)
        await self._cache.delete(recent_key(message.conversation_id, message.seq))
        return await self._publish(ConversationEvent(
            conversation_id=message.conversation_id, sync_type=SyncType.RECALL, msg_id=msg_id,
            seq=message.seq, actor_id=UserId(user_id), timestamp=now_ms(),
        ))

    async def delete(self, user_id: str, msg_id: int) -> ConversationEvent:
        message = await self._require(msg_id, user_id)
        return await self._publish(ConversationEvent(
            conversation_id=message.conversation_id, sync_type=SyncType.DELETE, msg_id=msg_id,
            seq=message.seq, actor_id=UserId(user_id), timestamp=now_ms(), for_user=UserId(user_id),
        ))

    async def read(self, user_id: str, conversation_id: str, seq: int) -> ConversationEvent:
        """Move the user's read position forward (never back): a READ event to the other
        members' devices, and a `read` ack to each device that sent a newly read message."""
        members = await self._membership.require_member(user_id, conversation_id)
        max_seq = (await self._db.max_seqs([conversation_id])).get(conversation_id, 0)
        seq = min(seq, max_seq)
        hidden_seq, _ = await self._membership.visibility(conversation_id, user_id)
        previous = max(await self._db.read_position(conversation_id, user_id), hidden_seq)
        if seq <= previous:  # not forward: nothing to tell anyone
            return ConversationEvent(
                conversation_id=ConversationId(conversation_id), sync_type=SyncType.READ, msg_id=0,
                seq=previous, actor_id=UserId(user_id), timestamp=now_ms())
        event = await self._db.append_event(ConversationEvent(
            conversation_id=ConversationId(conversation_id), sync_type=SyncType.READ, msg_id=0, seq=seq,
            actor_id=UserId(user_id), timestamp=now_ms(),
        ))
        newly_read = await self._db.messages_after(conversation_id, max(previous, seq - _READ_ACK_SPAN),
                                                   limit=_READ_ACK_SPAN)
        senders = {(m.sender_id, m.sender_device) for m in newly_read if m.seq <= seq and m.sender_id != user_id}
        receipt = codec.dumps({"type": "ack", "level": "read", "conversation_id": conversation_id,
                               "seq": seq, "user_id": user_id})
        frame = codec.dumps({"type": "event", **event.to_wire()})
        await self._fanout.to_users({m: [frame] for m in members if m != user_id})
        if senders:
            await self._fanout.to_devices({sender: [receipt] for sender in senders})
        return event

    async def _require(self, msg_id: int, user_id: str) -> Message:
        message = await self._db.get_message(msg_id)
        if message is None:
            raise NotFound(f"message {msg_id} does not exist")
        members = await self._membership.members(message.conversation_id)
        hidden_seq, _ = await self._membership.visibility(message.conversation_id, user_id)
        if user_id not in members or message.seq <= hidden_seq:
            raise NotFound(f"message {msg_id} does not exist")  # do not reveal other conversations
        return message

    async def _publish(self, event: ConversationEvent) -> ConversationEvent:
        stored = await self._db.append_event(event)
        frame = codec.dumps({"type": "event", **stored.to_wire()})
        members = [stored.for_user] if stored.for_user else await self._membership.members(stored.conversation_id)
        await self._fanout.to_users({u: [frame] for u in members})
        return stored


def _visible(message: Message) -> dict[str, object]:
    """The wire form a device may see: a recalled message keeps its envelope, not its body."""
    wire = message.to_wire()
    if message.recalled:
        wire["body"] = None
    return wire
