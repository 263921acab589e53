"""How the gateway reaches message-sync: one interface, in-process or gRPC.

In-process the SyncService itself is the client; GrpcSyncClient is the same over sync.proto.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Protocol, runtime_checkable

import grpc.aio

from services.common.errors import BackendUnavailable, FlareError
from services.common.grpcio import GrpcClientBase
from services.common.model import ConversationEvent, Cursor
from services.common.proto import sync_pb2 as pb
from services.common.proto import sync_pb2_grpc as pb_grpc
from services.common.proto_model import cursor_to_pb, event_from_pb, event_pb_to_wire, message_pb_to_wire

from .types import SyncResult

__all__ = ["SyncClient", "GrpcSyncClient"]

log = logging.getLogger("flare.sync.client")


@runtime_checkable
class SyncClient(Protocol):
    async def sync(self, user_id: str, device_id: str, *, cursors: Mapping[str, Cursor] | None = None,
                   limit: int | None = None) -> SyncResult:
        """What this device has not seen, per conversation with news (types.ConversationNews:
        messages, events, has_more, max_seq).

        Starts from the device's server-side cursors; `cursors` given by the device win
        over them per conversation. At most `limit` (capped by sync.page_limit) messages
        and events per conversation; `has_more` says to ask again.
        """

    def note_ack(self, user_id: str, device_id: str, conversation_id: str, *, seq: int = 0, event_id: int = 0) -> None:
        """The device has the conversation up to `seq` / `event_id`: advance its cursors
        (never backwards). Not awaited: buffered and written in batches, so a crash only
        means a few messages are sent again."""

    async def recall(self, user_id: str, msg_id: int) -> ConversationEvent:
        """The sender takes a message back within sync.recall_window_s: a RECALL event to
        every member. Forbidden for anyone else or past the window; NotFound if the message
        is not in one of the user's conversations."""

    async def delete(self, user_id: str, msg_id: int) -> ConversationEvent:
        """Hide a message for this user only (a DELETE event for their devices); NotFound
        as for recall."""

    async def read(self, user_id: str, conversation_id: str, seq: int) -> ConversationEvent:
        """The user has read up to `seq` (capped at the latest): a READ event for the user's
        devices, a `read` ack for the other members. Forbidden for a non-member."""


class GrpcSyncClient(GrpcClientBase):
    """SyncClient over gRPC (sync.proto); `channel` is a grpc.aio.Channel or a target.

    `note_ack` is synchronous and arrives at message rate, so acks are merged here per
    (user, device, conversation) (a cursor only moves forward) and sent in one NoteAcks
    call every `ack_flush_interval_s`. While the sync service is unreachable they stay
    buffered and are retried with backoff; a lost batch only means a device is sent a few
    messages again, which it recognises by seq. `close()` sends what is left.
    """

    service_name = "sync"
    stub_class = pb_grpc.SyncStub

    def __init__(self, channel: grpc.aio.Channel | str, *, timeout_s: float = 10.0,
                 ack_flush_interval_s: float = 0.05) -> None:
        super().__init__(channel, timeout_s=timeout_s)
        self._ack_interval = ack_flush_interval_s
        self._acks: dict[tuple[str, str, str], list[int]] = {}  # -> [seq, event_id]
        self._flusher: asyncio.Task[None] | None = None

    async def sync(self, user_id: str, device_id: str, *, cursors: Mapping[str, Cursor] | None = None,
                   limit: int | None = None) -> SyncResult:
        request = pb.SyncRequest(user_id=user_id, device_id=device_id, limit=limit or 0, cursors=[
            pb.ConversationCursor(conversation_id=c, cursor=cursor_to_pb(cursor)) for c, cursor in (cursors or {}).items()
        ])
        reply: pb.SyncResponse = await self._call(self._stub.Sync, request)
        return {
            news.conversation_id: {
                "messages": [message_pb_to_wire(m) for m in news.messages],
                "events": [event_pb_to_wire(e) for e in news.events],
                "has_more": news.has_more,
                "max_seq": news.max_seq,
            }
            for news in reply.conversations
        }

    def note_ack(self, user_id: str, device_id: str, conversation_id: str, *, seq: int = 0, event_id: int = 0) -> None:
        self._merge_ack((user_id, device_id, conversation_id), seq, event_id)
        if self._flusher is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop (a sync caller): the next note_ack or close() sends it
                return
            self._flusher = loop.create_task(self._flush_soon(), name="sync-client-ack-flush")

    def _merge_ack(self, key: tuple[str, str, str], seq: int, event_id: int) -> None:
        current = self._acks.get(key)
        if current is None:
            self._acks[key] = [seq, event_id]
        else:
            current[0] = max(current[0], seq)
            current[1] = max(current[1], event_id)

    async def flush(self) -> None:
        """Send every buffered ack now. BackendUnavailable keeps them buffered (and raises)."""
        if not self._acks:
            return
        acks, self._acks = self._acks, {}
        try:
            request = pb.NoteAcksRequest(acks=[
                pb.Ack(user_id=u, device_id=d, conversation_id=c, seq=seq, event_id=event_id)
                for (u, d, c), (seq, event_id) in acks.items()
            ])
        except (TypeError, ValueError):  # a caller passed a non-int seq: not worth a dead flusher
            log.warning("dropping %d cursor acks that cannot be encoded", len(acks), exc_info=True)
            return
        try:
            await self._call(self._stub.NoteAcks, request)
        except BackendUnavailable:
            for key, (seq, event_id) in acks.items():  # NoteAcks is idempotent (max): resend later
                self._merge_ack(key, seq, event_id)
            raise
        except FlareError:
            # The service refused the batch (bad ids): resending the same batch cannot help.
            log.warning("sync refused %d cursor acks; dropped", len(acks), exc_info=True)

    async def _flush_soon(self) -> None:
        delay = self._ack_interval
        try:
            while self._acks:
                await asyncio.sleep(delay)
                try:
                    await self.flush()
                    delay = self._ack_interval
                except BackendUnavailable:
                    delay = min(max(delay * 2, 0.1), 5.0)
                    log.warning("sync unreachable; %d cursor acks kept, retrying in %.1fs", len(self._acks), delay)
        finally:
            self._flusher = None

    async def close(self) -> None:
        flusher, self._flusher = self._flusher, None
        if flusher is not None:
            flusher.cancel()
            await asyncio.gather(flusher, return_exceptions=True)
        try:
            await self.flush()
        except BackendUnavailable:
            log.warning("closing with %d cursor acks unsent (sync unreachable)", len(self._acks))
        await super().close()

    async def recall(self, user_id: str, msg_id: int) -> ConversationEvent:
        return event_from_pb(await self._call(self._stub.Recall, pb.MessageRef(user_id=user_id, msg_id=msg_id)))

    async def delete(self, user_id: str, msg_id: int) -> ConversationEvent:
        return event_from_pb(await self._call(self._stub.Delete, pb.MessageRef(user_id=user_id, msg_id=msg_id)))

    async def read(self, user_id: str, conversation_id: str, seq: int) -> ConversationEvent:
        request = pb.ReadRequest(user_id=user_id, conversation_id=conversation_id, seq=seq)
        return event_from_pb(await self._call(self._stub.Read, request))
