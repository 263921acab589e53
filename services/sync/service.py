"""message-sync: per-device cursors, incremental sync, recall / delete / read as events.

Cursors live server-side (MessageDB) so any device of a user converges: a reconnecting
device gets, per conversation, the messages after its seq cursor and the events after its
event cursor. Device acks arrive at message rate, so cursor advances are buffered and
written in batches; a cursor that lags after a crash only means a few messages are sent
again, which devices recognise by seq.
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

from .types import SyncResult

__all__ = ["SyncService"]

log = logging.getLogger("flare.sync")


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
        self._buffer: dict[tuple[str, str, str], CursorUpdate] = {}
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
    def note_ack(self, user_id: str, device_id: str, conversation_id: str, *, seq: int = 0, event_id: int = 0) -> None:
        key = (user_id, device_id, conversation_id)
        current = self._buffer.get(key)
        if current is not None:
            seq, event_id = max(seq, current.seq), max(event_id, current.event_id)
        self._buffer[key] = CursorUpdate(UserId(user_id), DeviceId(device_id), ConversationId(conversation_id), seq, event_id)

    async def flush(self) -> None:
        if not self._buffer:
            return
        updates, self._buffer = list(self._buffer.values()), {}
        try:
            await self._db.advance_cursors(updates)
        except Exception:
            log.warning("cursor flush failed; %d cursors will be retried", len(updates), exc_info=True)
            for update in updates:  # put back, keeping anything newer
                self.note_ack(update.user_id, update.device_id, update.conversation_id,
                              seq=update.seq, event_id=update.event_id)

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(self._flush_interval)
            await self.flush()

    async def cursors(self, user_id: str, device_id: str) -> dict[str, Cursor]:
        stored = await self._db.get_cursors(user_id, device_id)
        for (u, d, conversation_id), update in self._buffer.items():
            if u == user_id and d == device_id:
                cursor = stored.setdefault(conversation_id, Cursor())
                cursor.seq = max(cursor.seq, update.seq)
                cursor.event_id = max(cursor.event_id, update.event_id)
        return stored

    # -- sync -------------------------------------------------------------------------
    async def sync(
        self, user_id: str, device_id: str, *, cursors: Mapping[str, Cursor] | None = None, limit: int | None = None,
    ) -> SyncResult:
        """What this device has not seen, per conversation (only conversations with news)."""
        limit = min(limit or self._config.page_limit, self._config.page_limit)
        server = await self.cursors(user_id, device_id)
        if cursors:
            server.update(cursors)
        conversations = await self._db.conversations_of(user_id)
        max_seqs = await self._db.max_seqs(conversations) if conversations else {}
        out: SyncResult = {}
        for conversation_id in conversations:
            cursor = server.get(conversation_id, Cursor())
            messages: list[Message] = []
            if max_seqs.get(conversation_id, 0) > cursor.seq:
                messages = await self._messages_after(
                    conversation_id, cursor.seq, max_seqs[conversation_id], limit + 1)
            events = await self._db.events_after(conversation_id, cursor.event_id, user_id=user_id, limit=limit + 1)
            if not messages and not events:
                continue
            has_more = len(messages) > limit or len(events) > limit
            messages, events = messages[:limit], events[:limit]
            if events:  # events are idempotent on the device: advance as soon as they are sent
                self.note_ack(user_id, device_id, conversation_id, event_id=events[-1].event_id)
            out[conversation_id] = {
                "messages": [m.to_wire() for m in messages],
                "events": [e.to_wire() for e in events],
                "has_more": has_more,
                "max_seq": max_seqs.get(conversation_id, 0),
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
        if now_ms() - message.created_at > self._config.recall_window_s * 1000:
            raise Forbidden(f"the recall window of {self._config.recall_window_s}s has passed")
        if not message.recalled:
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
        members = await self._membership.require_member(user_id, conversation_id)
        max_seq = (await self._db.max_seqs([conversation_id])).get(conversation_id, 0)
        seq = min(seq, max_seq)
        event = await self._db.append_event(ConversationEvent(
            conversation_id=ConversationId(conversation_id), sync_type=SyncType.READ, msg_id=0, seq=seq,
            actor_id=UserId(user_id), timestamp=now_ms(),
        ))
        # Other members learn "read up to seq" as an ack of level read; the reader's own
        # devices get the event so they clear their unread state too.
        receipt = codec.dumps({"type": "ack", "level": "read", "conversation_id": conversation_id,
                               "seq": seq, "user_id": user_id})
        await self._fanout.to_users({
            **{m: [receipt] for m in members if m != user_id},
            user_id: [codec.dumps({"type": "event", **event.to_wire()})],
        })
        return event

    async def _require(self, msg_id: int, user_id: str) -> Message:
        message = await self._db.get_message(msg_id)
        if message is None:
            raise NotFound(f"message {msg_id} does not exist")
        members = await self._membership.members(message.conversation_id)
        if user_id not in members:
            raise NotFound(f"message {msg_id} does not exist")  # do not reveal other conversations
        return message

    async def _publish(self, event: ConversationEvent) -> ConversationEvent:
        stored = await self._db.append_event(event)
        frame = codec.dumps({"type": "event", **stored.to_wire()})
        members = [stored.for_user] if stored.for_user else await self._membership.members(stored.conversation_id)
        await self._fanout.to_users({u: [frame] for u in members})
        return stored
