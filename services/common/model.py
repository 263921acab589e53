"""The message model shared by every service (ARCHITECTURE §5).

Plain slotted dataclasses: cheap to build on the hot path, and `to_wire`/`from_wire`
give the JSON shape used in frames and log records. Message ids travel as decimal
strings on the wire and as ints inside Flare.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field, replace

from .ids import ConversationId, DeviceId, UserId
from .pickling import pickled_by_fields

__all__ = [
    "AckLevel",
    "SyncType",
    "DeviceType",
    "SessionStatus",
    "MessageFlags",
    "Message",
    "SyncEvent",
    "ConversationEvent",
    "Session",
    "Cursor",
    "c2c_conversation_id",
    "group_conversation_id",
    "conversation_kind",
    "c2c_members",
    "now_ms",
    "MAX_ID_LENGTH",
    "MAX_GROUP_MEMBERS",
    "validate_name",
]

MAX_ID_LENGTH = 128
MAX_GROUP_MEMBERS = 5000  # per group, the owner included (advertised in hello)


def now_ms() -> int:
    return int(time.time() * 1000)


class AckLevel(enum.IntEnum):
    RECEIVED = 1  # the gateway has it
    STORED = 2  # durably in the log
    DELIVERED = 3  # a device of the recipient acked
    READ = 4

    @property
    def wire(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> AckLevel:
        return cls[text.upper()]


class SyncType(enum.Enum):
    NEW = "new"
    UPDATE = "update"
    DELETE = "delete"
    RECALL = "recall"
    READ = "read"
    MEMBER = "member"  # a group's membership changed (payload: change, user_ids, role)


class DeviceType(enum.Enum):
    MOBILE = "mobile"
    DESKTOP = "desktop"
    WEB = "web"
    PAD = "pad"


class SessionStatus(enum.Enum):
    ONLINE = "online"
    AWAY = "away"
    OFFLINE = "offline"


class MessageFlags(enum.IntFlag):
    NONE = 0
    RECALLED = 1


def validate_name(value: object, what: str) -> str:
    """User, device and group ids: short, printable, and free of the ':' separator."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string")
    if len(value) > MAX_ID_LENGTH:
        raise ValueError(f"{what} is longer than {MAX_ID_LENGTH} characters")
    if ":" in value or not value.isprintable() or value.strip() != value:
        raise ValueError(f"{what} may not contain ':', whitespace at the ends or control characters")
    return value


def c2c_conversation_id(a: str, b: str) -> ConversationId:
    low, high = sorted((a, b))
    return ConversationId(f"c2c:{low}:{high}")


def group_conversation_id(group_id: str) -> ConversationId:
    return ConversationId(f"group:{group_id}")


def conversation_kind(conversation_id: str) -> str:
    """'c2c' or 'group'; ValueError for anything else."""
    kind, _, rest = conversation_id.partition(":")
    if kind == "c2c":
        a, sep, b = rest.partition(":")
        if not sep:
            raise ValueError("c2c conversation id must be c2c:<user>:<user>")
        validate_name(a, "user id")
        validate_name(b, "user id")
        if a > b:
            raise ValueError("c2c conversation id must list its two users in sorted order")
        return kind
    if kind == "group":
        validate_name(rest, "group id")
        return kind
    raise ValueError("conversation id must start with 'c2c:' or 'group:'")


def c2c_members(conversation_id: str) -> tuple[UserId, UserId]:
    _, a, b = conversation_id.split(":")
    return UserId(a), UserId(b)


@pickled_by_fields
@dataclass(slots=True)
class Message:
    msg_id: int
    client_msg_id: str
    conversation_id: ConversationId
    sender_id: UserId
    sender_device: DeviceId
    content_type: str
    body: object
    created_at: int  # ms since the Unix epoch, set by the gateway
    seq: int = 0  # 0 until the store consumer assigns it
    flags: int = 0

    @property
    def recalled(self) -> bool:
        return bool(self.flags & MessageFlags.RECALLED)

    def with_seq(self, seq: int) -> Message:
        return replace(self, seq=seq)

    def to_wire(self) -> dict[str, object]:
        return {
            "msg_id": str(self.msg_id),
            "client_msg_id": self.client_msg_id,
            "conversation_id": self.conversation_id,
            "sender_id": self.sender_id,
            "sender_device": self.sender_device,
            "content_type": self.content_type,
            "body": self.body,
            "created_at": self.created_at,
            "seq": self.seq,
            "flags": self.flags,
        }

    @classmethod
    def from_wire(cls, data: dict) -> Message:
        return cls(
            msg_id=int(data["msg_id"]),
            client_msg_id=data["client_msg_id"],
            conversation_id=ConversationId(data["conversation_id"]),
            sender_id=UserId(data["sender_id"]),
            sender_device=DeviceId(data["sender_device"]),
            content_type=data["content_type"],
            body=data["body"],
            created_at=int(data["created_at"]),
            seq=int(data.get("seq", 0)),
            flags=int(data.get("flags", 0)),
        )


@pickled_by_fields
@dataclass(slots=True, frozen=True)
class SyncEvent:
    """What a device is told about a change (the original design's MessageSync)."""

    msg_id: int
    seq: int
    device_id: DeviceId
    sync_type: SyncType
    timestamp: int


@pickled_by_fields
@dataclass(slots=True)
class ConversationEvent:
    """A change to a conversation after a message was stored: recall, delete, read, update.

    Events are numbered per conversation (`event_id`, assigned by the MessageDB) so a
    device can resume them from a cursor just like messages. `for_user` limits an
    event to one user's devices (a delete "for me"); None means every member.
    """

    conversation_id: ConversationId
    sync_type: SyncType
    msg_id: int
    seq: int
    actor_id: UserId
    timestamp: int
    for_user: UserId | None = None
    event_id: int = 0
    payload: dict = field(default_factory=dict)

    def to_wire(self) -> dict[str, object]:
        return {
            "event_id": self.event_id,
            "conversation_id": self.conversation_id,
            "sync_type": self.sync_type.value,
            "msg_id": str(self.msg_id),
            "seq": self.seq,
            "actor_id": self.actor_id,
            "timestamp": self.timestamp,
            "for_user": self.for_user,
            "payload": self.payload,
        }


@pickled_by_fields
@dataclass(slots=True)
class Cursor:
    """How far one device has seen one conversation: messages by seq, events by event_id."""

    seq: int = 0
    event_id: int = 0


@pickled_by_fields
@dataclass(slots=True)
class Session:
    user_id: UserId
    device_id: DeviceId
    device_type: DeviceType
    connection_id: str
    gateway_id: str
    last_active: int
    status: SessionStatus = SessionStatus.ONLINE

    def to_dict(self) -> dict[str, object]:
        return {
            "user_id": self.user_id,
            "device_id": self.device_id,
            "device_type": self.device_type.value,
            "connection_id": self.connection_id,
            "gateway_id": self.gateway_id,
            "last_active": self.last_active,
            "status": self.status.value,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Session:
        return cls(
            user_id=UserId(data["user_id"]),
            device_id=DeviceId(data["device_id"]),
            device_type=DeviceType(data["device_type"]),
            connection_id=data["connection_id"],
            gateway_id=data["gateway_id"],
            last_active=int(data["last_active"]),
            status=SessionStatus(data["status"]),
        )
