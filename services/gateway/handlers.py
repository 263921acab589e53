"""What the gateway does with each client frame type (docs/protocol.md)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from services.common import codec
from services.common.config import GatewayConfig
from services.common.errors import Busy, InvalidInput, TooLarge
from services.common.ids import ConversationId, MessageIdGenerator
from services.common.metrics import ACK_RECEIVED, MESSAGES_IN, MESSAGES_IN_TEXT
from services.common.model import MAX_GROUP_MEMBERS, Message, SessionStatus, group_conversation_id, now_ms, validate_name
from services.delivery.groups import HISTORY_RULES, JOIN_POLICIES
from services.router.client import RouterClient
from services.session.client import SessionClient
from services.store.types import Reservation
from services.sync.client import SyncClient

from .connection import ClientConnection, Replaceable
from .pressure import SendGate
from .frames import (
    BadFrame,
    conversation_field,
    conversation_of_send,
    cursors_field,
    message_id_field,
    optional_str,
    require_int,
    require_str,
)

__all__ = ["FrameHandlers", "Peers"]

Handler = Callable[[ClientConnection, dict], Awaitable[None]]
_MAX_DELIVERED_PER_ACK = 5000  # a sync page's whole range at most (sync limit maximum)


def _push_received(conn: ClientConnection, ack: dict, admitted: Reservation, received_at: int) -> Replaceable | None:
    """`received` (and `stored` at once for a resend of a stored message); returns what
    `stored` may replace (compact: a `received` still queued when `stored` is ready)."""
    msg_id = str(admitted.msg_id)
    received = codec.dumps({**ack, "msg_id": msg_id, "level": "received", "duplicate": admitted.duplicate})
    waiting = Replaceable(received) if conn.compact else None
    conn.push(waiting or received)
    ACK_RECEIVED.observe(max(0, now_ms() - received_at) / 1000)
    if admitted.stored:
        _push_stored(conn, waiting, codec.dumps({**ack, "msg_id": msg_id, "level": "stored", "duplicate": True}))
    return waiting


def _push_stored(conn: ClientConnection, waiting: Replaceable | None, stored: bytes) -> None:
    """`stored`, in place of its `received` if that has not left yet (compact)."""
    if waiting is not None and not waiting.taken:
        waiting.frame = stored
    else:
        conn.push(stored)


@dataclass(frozen=True, slots=True)
class Peers:
    """What the handlers use of the gateway: its config and the services behind it (not
    the GatewayService, which owns the connections and calls into this module)."""

    config: GatewayConfig
    router: RouterClient
    sync: SyncClient
    session: SessionClient
    note_delivered: Callable[[str, str, int], None]  # (user, conversation, seq), batched per tick
    gate: SendGate  # load shedding: `busy` before admitting


class FrameHandlers:
    def __init__(self, gateway: Peers, ids: MessageIdGenerator) -> None:
        self.gw = gateway
        self.ids = ids
        self.table: dict[str, Handler] = {
            "send": self.send, "ack": self.ack, "read": self.read, "sync": self.sync,
            "recall": self.recall, "delete": self.delete, "heartbeat": self.heartbeat,
            "presence": self.presence, "group_create": self.group_create,
            "group_join": self.group_join, "group_leave": self.group_leave, "group_add": self.group_add,
            "group_remove": self.group_remove, "group_set_role": self.group_set_role, "group_info": self.group_info,
        }

    async def send(self, conn: ClientConnection, frame: dict) -> None:
        # Overloaded: `busy`, rather than queueing the send, unless it is a resend of a
        # stored message (below); counted as shed only when it is refused.
        shed = self.gw.gate.refusal()
        received_at = now_ms()
        client_msg_id = require_str(frame, "client_msg_id")
        conversation_id = conversation_of_send(frame, conn.user_id)
        content_type = optional_str(frame, "content_type", max_len=32) or "text"
        body = frame.get("body")
        if body is None or not isinstance(body, (str, dict)):
            raise BadFrame("field 'body' is required and must be a string or an object")
        size = len(body.encode()) if isinstance(body, str) else len(codec.dumps(body))
        if size > self.gw.config.max_body_bytes:
            raise TooLarge(f"body is {size} bytes; the limit is {self.gw.config.max_body_bytes}")
        message = Message(
            msg_id=self.ids.next_id(), client_msg_id=client_msg_id, conversation_id=ConversationId(conversation_id),
            sender_id=conn.user_id, sender_device=conn.device_id, content_type=content_type, body=body,
            created_at=received_at,
        )
        counted = MESSAGES_IN_TEXT if content_type == "text" else MESSAGES_IN.labels(content_type)
        ref = frame.get("id", client_msg_id)
        ack = {"type": "ack", "ref": ref, "client_msg_id": client_msg_id, "conversation_id": conversation_id}
        if shed is not None:
            # Overloaded: only a resend of a stored message is answered (it costs nothing
            # more, and §12 promises that nothing that got `stored` is ever shed).
            admitted = await self.gw.router.admit(message)
            if not admitted.stored:
                self.gw.gate.shed(shed)
            counted.inc()
            _push_received(conn, ack, admitted, received_at)
            return
        # Membership and the dedup reservation come before `received` (router.submit calls
        # back with the reservation before it sends): a non-member is refused without one,
        # and a resend is told its original msg_id from the first ack.
        first: list[tuple[Reservation, Replaceable | None]] = []

        def admitted(reservation: Reservation) -> None:
            if not first:  # once, though a failover may admit again
                counted.inc()
                first.append((reservation, _push_received(conn, ack, reservation, received_at)))

        try:
            result = await self.gw.router.submit(message, admitted)
        except Busy as exc:
            self.gw.gate.core_busy(exc)
            raise
        reservation, waiting = first[0]
        if not reservation.stored:  # a stored resend had its `stored` with its `received`
            _push_stored(conn, waiting, codec.dumps({**ack, "level": "stored", "msg_id": str(result.msg_id),
                                                      "duplicate": result.duplicate}))

    async def ack(self, conn: ClientConnection, frame: dict) -> None:
        conversation_id = conversation_field(frame)
        if "seq" not in frame and "event_id" not in frame:
            raise BadFrame("an ack needs 'seq' (a message or a sync page) and/or 'event_id' (a sync page's events)")
        seq = require_int(frame, "seq", minimum=1) if "seq" in frame else 0
        event_id = require_int(frame, "event_id", minimum=1) if "event_id" in frame else 0
        held = conn.held.ack(conversation_id, seq=seq, event_id=event_id)
        note_ack = self.gw.sync.note_ack
        for after, to in held.seqs:
            note_ack(conn.user_id, conn.device_id, conversation_id, seq=to, after_seq=after)
        for after, to in held.events:
            note_ack(conn.user_id, conn.device_id, conversation_id, event_id=to, after_event_id=after)
        if seq:
            # An ack of N proves every frame before it on this connection (§7), so every seq
            # the proven ranges cover is delivered, not only N: a client may ack only the
            # highest seq per conversation (cumulative acks, docs/protocol.md §12).
            for after, to in held.seqs:
                for held_seq in range(max(after, to - _MAX_DELIVERED_PER_ACK) + 1, to + 1):
                    self.gw.note_delivered(conn.user_id, conversation_id, held_seq)

    async def read(self, conn: ClientConnection, frame: dict) -> None:
        conversation_id = conversation_field(frame)
        await self.gw.sync.read(conn.user_id, conversation_id, require_int(frame, "seq", minimum=1))

    async def sync(self, conn: ClientConnection, frame: dict) -> None:
        limit = require_int(frame, "limit", minimum=1, maximum=5000) if "limit" in frame else None
        result = await self.gw.sync.sync(conn.user_id, conn.device_id, cursors=cursors_field(frame), limit=limit)
        for conversation_id, page in result.items():  # in queue order with the frame itself
            conn.held.page(conversation_id, after_seq=page["after"]["seq"], next_seq=page["next"]["seq"],
                           after_event=page["after"]["event_id"], next_event=page["next"]["event_id"])
        conn.push(codec.dumps({"type": "sync_result", "ref": frame.get("id"), "conversations": result}))

    async def recall(self, conn: ClientConnection, frame: dict) -> None:
        await self.gw.sync.recall(conn.user_id, message_id_field(frame))

    async def delete(self, conn: ClientConnection, frame: dict) -> None:
        await self.gw.sync.delete(conn.user_id, message_id_field(frame))

    async def heartbeat(self, conn: ClientConnection, frame: dict) -> None:
        await self.gw.session.heartbeat(conn.user_id, conn.device_id, connection_id=conn.connection_id)
        conn.push(codec.dumps({"type": "heartbeat_ack", "ref": frame.get("id"), "server_time": now_ms()}))

    async def presence(self, conn: ClientConnection, frame: dict) -> None:
        if frame.get("status") is not None:
            status = require_str(frame, "status", max_len=16)
            if status not in ("online", "away"):
                raise InvalidInput("field 'status' must be 'online' or 'away'")
            await self.gw.session.set_status(conn.user_id, conn.device_id, status=SessionStatus(status),
                                             connection_id=conn.connection_id)
            return
        users = frame.get("user_ids")
        if not isinstance(users, list) or not all(isinstance(u, str) for u in users):
            raise BadFrame("presence needs 'status', or 'user_ids' as a list of strings")
        if not 1 <= len(users) <= 1000:  # the right type, a count out of range: §10 invalid_input
            raise InvalidInput("field 'user_ids' must list 1 to 1000 user ids")
        statuses = await self.gw.session.presence(users)
        conn.push(codec.dumps({
            "type": "presence", "ref": frame.get("id"),
            "statuses": {u: (s.value if hasattr(s, "value") else s) for u, s in statuses.items()},
        }))

    def _group_id(self, frame: dict) -> str:
        group_id = require_str(frame, "group_id")
        try:
            return validate_name(group_id, "group_id")
        except ValueError as exc:
            raise InvalidInput(f"field 'group_id': {exc}") from exc

    def _user_ids(self, frame: dict, field: str) -> list[str]:
        users = frame.get(field)
        if not isinstance(users, list) or len(users) > MAX_GROUP_MEMBERS:
            raise BadFrame(f"field '{field}' must be a list of at most {MAX_GROUP_MEMBERS} user ids")
        try:
            return sorted({validate_name(u, "member") for u in users})
        except ValueError as exc:
            raise InvalidInput(f"field '{field}': {exc}") from exc

    def _choice(self, frame: dict, field: str, choices: tuple[str, ...]) -> str:
        value = frame.get(field, choices[0])
        if value not in choices:
            raise InvalidInput(f"field '{field}' must be one of {', '.join(choices)}")
        return value

    async def group_create(self, conn: ClientConnection, frame: dict) -> None:
        conversation_id = group_conversation_id(self._group_id(frame))
        members = self._user_ids(frame, "members") if "members" in frame else []
        info = await self.gw.router.create_group(
            conn.user_id, conversation_id, members, join_policy=self._choice(frame, "join_policy", JOIN_POLICIES),
            history=self._choice(frame, "history", HISTORY_RULES))
        wire = info.to_wire()
        conn.push(codec.dumps({"type": "group_created", "ref": frame.get("id"), **wire,
                               "members": [m["user_id"] for m in wire["members"]]}))

    async def group_join(self, conn: ClientConnection, frame: dict) -> None:
        conversation_id = group_conversation_id(self._group_id(frame))
        await self.gw.router.join_group(conn.user_id, conversation_id)
        conn.push(codec.dumps({"type": "group_joined", "ref": frame.get("id"), "conversation_id": conversation_id}))

    async def group_leave(self, conn: ClientConnection, frame: dict) -> None:
        conversation_id = group_conversation_id(self._group_id(frame))
        await self.gw.router.leave_group(conn.user_id, conversation_id)
        conn.push(codec.dumps({"type": "group_left", "ref": frame.get("id"), "conversation_id": conversation_id}))

    async def group_add(self, conn: ClientConnection, frame: dict) -> None:
        conversation_id = group_conversation_id(self._group_id(frame))
        added = await self.gw.router.add_members(conn.user_id, conversation_id, self._user_ids(frame, "user_ids"))
        conn.push(codec.dumps({"type": "group_updated", "ref": frame.get("id"), "conversation_id": conversation_id,
                               "change": "added", "user_ids": added}))

    async def group_remove(self, conn: ClientConnection, frame: dict) -> None:
        conversation_id = group_conversation_id(self._group_id(frame))
        gone = await self.gw.router.remove_members(conn.user_id, conversation_id, self._user_ids(frame, "user_ids"))
        conn.push(codec.dumps({"type": "group_updated", "ref": frame.get("id"), "conversation_id": conversation_id,
                               "change": "removed", "user_ids": gone}))

    async def group_set_role(self, conn: ClientConnection, frame: dict) -> None:
        conversation_id = group_conversation_id(self._group_id(frame))
        user_id = require_str(frame, "user_id")
        role = require_str(frame, "role", max_len=16)
        if role not in ("admin", "member"):
            raise InvalidInput("field 'role' must be 'admin' or 'member'")
        await self.gw.router.set_role(conn.user_id, conversation_id, user_id, role)
        conn.push(codec.dumps({"type": "group_updated", "ref": frame.get("id"), "conversation_id": conversation_id,
                               "change": "role", "user_ids": [user_id], "role": role}))

    async def group_info(self, conn: ClientConnection, frame: dict) -> None:
        conversation_id = group_conversation_id(self._group_id(frame))
        info = await self.gw.router.group_info(conn.user_id, conversation_id)
        conn.push(codec.dumps({"type": "group_info", "ref": frame.get("id"), **info.to_wire()}))
