"""The message model (services/common/model.py) <-> common.proto messages.

Bodies and payloads are arbitrary JSON, carried as orjson bytes. Enums map by name
(DeviceType.WEB <-> DEVICE_TYPE_WEB), so adding a member to both is the whole change.
"""

from __future__ import annotations

import orjson

from services.common.errors import InvalidInput
from services.common.ids import ConversationId, DeviceId, UserId
from services.common.model import ConversationEvent, Cursor, DeviceType, Message, Session, SessionStatus, SyncType
from services.common.proto import common_pb2 as pb

__all__ = [
    "json_bytes",
    "json_value",
    "message_to_pb",
    "message_from_pb",
    "event_to_pb",
    "event_from_pb",
    "session_to_pb",
    "session_from_pb",
    "cursor_to_pb",
    "cursor_from_pb",
    "status_to_pb",
    "status_from_pb",
    "message_wire_to_pb",
    "message_pb_to_wire",
    "event_wire_to_pb",
    "event_pb_to_wire",
]

_SYNC_TO_PB = {t: pb.SyncType.Value(f"SYNC_TYPE_{t.name}") for t in SyncType}
_SYNC_FROM_PB = {v: k for k, v in _SYNC_TO_PB.items()}
_DEVICE_TO_PB = {t: pb.DeviceType.Value(f"DEVICE_TYPE_{t.name}") for t in DeviceType}
_DEVICE_FROM_PB = {v: k for k, v in _DEVICE_TO_PB.items()}
_STATUS_TO_PB = {s: pb.SessionStatus.Value(f"SESSION_STATUS_{s.name}") for s in SessionStatus}
_STATUS_FROM_PB = {v: k for k, v in _STATUS_TO_PB.items()}


def json_bytes(value: object, what: str = "body") -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError as exc:  # orjson.JSONEncodeError: sets, bytes, non-str keys, >64-bit ints
        raise InvalidInput(f"{what} is not JSON: {exc}", field=what) from exc


def json_value(data: bytes, what: str = "body") -> object:
    if not data:
        return None
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"{what} is not JSON: {exc}", field=what) from exc


def message_to_pb(message: Message) -> pb.Message:
    return pb.Message(
        msg_id=message.msg_id, client_msg_id=message.client_msg_id, conversation_id=message.conversation_id,
        sender_id=message.sender_id, sender_device=message.sender_device, content_type=message.content_type,
        body_json=json_bytes(message.body), created_at=message.created_at, seq=message.seq, flags=message.flags,
    )


def message_from_pb(data: pb.Message) -> Message:
    return Message(
        msg_id=data.msg_id, client_msg_id=data.client_msg_id, conversation_id=ConversationId(data.conversation_id),
        sender_id=UserId(data.sender_id), sender_device=DeviceId(data.sender_device), content_type=data.content_type,
        body=json_value(data.body_json), created_at=data.created_at, seq=data.seq, flags=data.flags,
    )


def event_to_pb(event: ConversationEvent) -> pb.ConversationEvent:
    out = pb.ConversationEvent(
        conversation_id=event.conversation_id, sync_type=_SYNC_TO_PB[event.sync_type], msg_id=event.msg_id,
        seq=event.seq, actor_id=event.actor_id, timestamp=event.timestamp, event_id=event.event_id,
        payload_json=json_bytes(event.payload, "payload"),
    )
    if event.for_user is not None:
        out.for_user = event.for_user
    return out


def event_from_pb(data: pb.ConversationEvent) -> ConversationEvent:
    payload = json_value(data.payload_json, "payload")
    return ConversationEvent(
        conversation_id=ConversationId(data.conversation_id), sync_type=_SYNC_FROM_PB[data.sync_type],
        msg_id=data.msg_id, seq=data.seq, actor_id=UserId(data.actor_id), timestamp=data.timestamp,
        for_user=UserId(data.for_user) if data.HasField("for_user") else None, event_id=data.event_id,
        payload=payload if isinstance(payload, dict) else {},
    )


def session_to_pb(session: Session) -> pb.Session:
    return pb.Session(
        user_id=session.user_id, device_id=session.device_id, device_type=_DEVICE_TO_PB[session.device_type],
        connection_id=session.connection_id, gateway_id=session.gateway_id, last_active=session.last_active,
        status=_STATUS_TO_PB[session.status],
    )


def session_from_pb(data: pb.Session) -> Session:
    return Session(
        user_id=UserId(data.user_id), device_id=DeviceId(data.device_id), device_type=_DEVICE_FROM_PB[data.device_type],
        connection_id=data.connection_id, gateway_id=data.gateway_id, last_active=data.last_active,
        status=_STATUS_FROM_PB[data.status],
    )


def cursor_to_pb(cursor: Cursor) -> pb.Cursor:
    return pb.Cursor(seq=cursor.seq, event_id=cursor.event_id)


def cursor_from_pb(data: pb.Cursor) -> Cursor:
    return Cursor(seq=data.seq, event_id=data.event_id)


def status_to_pb(status: SessionStatus) -> int:
    return _STATUS_TO_PB[status]


def status_from_pb(value: int) -> SessionStatus:
    return _STATUS_FROM_PB[value]


# -- the wire dicts of model.py (to_wire) <-> protobuf, for APIs that speak wire dicts --------
def message_wire_to_pb(data: dict) -> pb.Message:
    return message_to_pb(Message.from_wire(data))


def message_pb_to_wire(data: pb.Message) -> dict[str, object]:
    return message_from_pb(data).to_wire()


def event_wire_to_pb(data: dict) -> pb.ConversationEvent:
    for_user = data.get("for_user")
    payload = data.get("payload")
    return event_to_pb(ConversationEvent(
        conversation_id=ConversationId(data["conversation_id"]), sync_type=SyncType(data["sync_type"]),
        msg_id=int(data["msg_id"]), seq=int(data["seq"]), actor_id=UserId(data["actor_id"]),
        timestamp=int(data["timestamp"]), for_user=UserId(for_user) if for_user is not None else None,
        event_id=int(data.get("event_id", 0)), payload=payload if isinstance(payload, dict) else {},
    ))


def event_pb_to_wire(data: pb.ConversationEvent) -> dict[str, object]:
    return event_from_pb(data).to_wire()
