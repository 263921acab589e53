"""How the gateway reaches message-sync: one interface, in-process or gRPC.

In-process the SyncService itself is the client; GrpcSyncClient is the same over sync.proto.
"""

from __future__ import annotations

import asyncio
import contextlib
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

from .ranges import merge_range
from .types import SyncResult

__all__ = ["SyncClient", "GrpcSyncClient"]

log = logging.getLogger("flare.sync.client")


@runtime_checkable
class SyncClient(Protocol):
    async def sync(self, user_id: str, device_id: str, *, cursors: Mapping[str, Cursor] | None = None,
                   limit: int | None = None) -> SyncResult:
        """What this device has not seen, per conversation with news (types.ConversationNews:
        messages, events, has_more, max_seq, and the range it covers: after, next).

        Starts from the device's server-side cursors; `cursors` given by the device win
        over them per conversation. At most `limit` (capped by sync.page_limit) messages
        and events per conversation; `has_more` says to ask again.
        """

    def note_ack(self, user_id: str, device_id: str, conversation_id: str, *, seq: int = 0, event_id: int = 0,
                 after_seq: int | None = None, after_event_id: int | None = None) -> None:
        """The device holds seqs (after_seq, seq] and events (after_event_id, event_id]
        (default: just that one message / event). The cursor moves over a range only if it
        already reaches the range's start: never backwards, never over a gap. Not awaited:
        buffered and written in batches (a sync of the same device applies what is buffered
        first), so a crash only means a few messages are sent again."""

    async def recall(self, user_id: str, msg_id: int) -> ConversationEvent:
        """The sender takes a message back within sync.recall_window_s: a RECALL event to
        every member. Forbidden for anyone else or past the window; NotFound if the message
        is not in one of the user's conversations."""

    async def delete(self, user_id: str, msg_id: int) -> ConversationEvent:
        """Hide a message for this user only (a DELETE event for their devices); NotFound
        as for recall."""

    async def read(self, user_id: str, conversation_id: str, seq: int) -> ConversationEvent:
        """The user has read up to `seq` (capped at the latest). Forbidden for a non-member."""


class GrpcSyncClient(GrpcClientBase):
    """SyncClient over gRPC (sync.proto); `channel` is a grpc.aio.Channel or a target.

    `note_ack` is synchronous and arrives at message rate, so held ranges are merged here
    per (user, device, conversation) and sent in one NoteAcks call every
    `ack_flush_interval_s`, and before any sync (so a device's ack counts for its next sync). While the sync service is unreachable they stay
    buffered and are retried with backoff; a lost batch only means a device is sent a few
    messages again, which it recognises by seq. `close()` sends what is left.
    """

    service_name = "sync"
    stub_class = pb_grpc.SyncStub

    def __init__(self, channel: grpc.aio.Channel | str, *, timeout_s: float = 10.0,
                 ack_flush_interval_s: float = 0.05) -> None:
        super().__init__(channel, timeout_s=timeout_s)
        self._ack_interval = ack_flush_interval_s
        self._acks: dict[tuple[str, str, str], tuple[list[list[int]], list[list[int]]]] = {}  # -> seq, event runs
        self._flusher: asyncio.Task[None] | None = None
        self._sending = asyncio.Lock()

    async def sync(self, user_id: str, device_id: str, *, cursors: Mapping[str, Cursor] | None = None,
                   limit: int | None = None) -> SyncResult:
        with contextlib.suppress(BackendUnavailable):  # acks first; still buffered if it fails
            await self.flush()
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
                "after": {"seq": news.after_cursor.seq, "event_id": news.after_cursor.event_id},
                "next": {"seq": news.next_cursor.seq, "event_id": news.next_cursor.event_id},
            }
            for news in reply.conversations
        }

    def note_ack(self, user_id: str, device_id: str, conversation_id: str, *, seq: int = 0, event_id: int = 0,
                 after_seq: int | None = None, after_event_id: int | None = None) -> None:
        runs = self._acks.get((user_id, device_id, conversation_id))
        if runs is None:
            runs = self._acks[(user_id, device_id, conversation_id)] = ([], [])
        if seq > 0:
            merge_range(runs[0], seq - 1 if after_seq is None else after_seq, seq)
        if event_id > 0:
            merge_range(runs[1], event_id - 1 if after_event_id is None else after_event_id, event_id)
        if self._flusher is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop (a sync caller): the next note_ack or close() sends it
                return
            self._flusher = loop.create_task(self._flush_soon(), name="sync-client-ack-flush")

    def _requeue(self, acks: dict) -> None:
        for (u, d, c), (seq_runs, event_runs) in acks.items():
            for after, to in seq_runs:
                self.note_ack(u, d, c, seq=to, after_seq=after)
            for after, to in event_runs:
                self.note_ack(u, d, c, event_id=to, after_event_id=after)

    async def flush(self) -> None:
        """Send every buffered ack now, after any batch already on its way (so a sync that
        flushes first sees every earlier ack). BackendUnavailable keeps them buffered (and raises)."""
        async with self._sending:
            await self._send_buffered()

    async def _send_buffered(self) -> None:
        if not self._acks:
            return
        acks, self._acks = self._acks, {}
        try:
            request = pb.NoteAcksRequest(acks=[
                ack
                for (u, d, c), (seq_runs, event_runs) in acks.items()
                for ack in (
                    [pb.Ack(user_id=u, device_id=d, conversation_id=c, seq=to, after_seq=after) for after, to in seq_runs]
                    + [pb.Ack(user_id=u, device_id=d, conversation_id=c, event_id=to, after_event_id=after)
                       for after, to in event_runs])
            ])
        except (TypeError, ValueError):  # a caller passed a non-int seq: not worth a dead flusher
            log.warning("dropping %d cursor acks that cannot be encoded", len(acks), exc_info=True)
            return
        try:
            await self._call(self._stub.NoteAcks, request)
        except BackendUnavailable:
            self._requeue(acks)  # NoteAcks is idempotent: resend later
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
