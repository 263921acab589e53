from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SyncType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SYNC_TYPE_UNSPECIFIED: _ClassVar[SyncType]
    SYNC_TYPE_NEW: _ClassVar[SyncType]
    SYNC_TYPE_UPDATE: _ClassVar[SyncType]
    SYNC_TYPE_DELETE: _ClassVar[SyncType]
    SYNC_TYPE_RECALL: _ClassVar[SyncType]
    SYNC_TYPE_READ: _ClassVar[SyncType]
    SYNC_TYPE_MEMBER: _ClassVar[SyncType]

class DeviceType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DEVICE_TYPE_UNSPECIFIED: _ClassVar[DeviceType]
    DEVICE_TYPE_MOBILE: _ClassVar[DeviceType]
    DEVICE_TYPE_DESKTOP: _ClassVar[DeviceType]
    DEVICE_TYPE_WEB: _ClassVar[DeviceType]
    DEVICE_TYPE_PAD: _ClassVar[DeviceType]

class SessionStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SESSION_STATUS_UNSPECIFIED: _ClassVar[SessionStatus]
    SESSION_STATUS_ONLINE: _ClassVar[SessionStatus]
    SESSION_STATUS_AWAY: _ClassVar[SessionStatus]
    SESSION_STATUS_OFFLINE: _ClassVar[SessionStatus]
SYNC_TYPE_UNSPECIFIED: SyncType
SYNC_TYPE_NEW: SyncType
SYNC_TYPE_UPDATE: SyncType
SYNC_TYPE_DELETE: SyncType
SYNC_TYPE_RECALL: SyncType
SYNC_TYPE_READ: SyncType
SYNC_TYPE_MEMBER: SyncType
DEVICE_TYPE_UNSPECIFIED: DeviceType
DEVICE_TYPE_MOBILE: DeviceType
DEVICE_TYPE_DESKTOP: DeviceType
DEVICE_TYPE_WEB: DeviceType
DEVICE_TYPE_PAD: DeviceType
SESSION_STATUS_UNSPECIFIED: SessionStatus
SESSION_STATUS_ONLINE: SessionStatus
SESSION_STATUS_AWAY: SessionStatus
SESSION_STATUS_OFFLINE: SessionStatus

class Message(_message.Message):
    __slots__ = ("msg_id", "client_msg_id", "conversation_id", "sender_id", "sender_device", "content_type", "body_json", "created_at", "seq", "flags")
    MSG_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_MSG_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_DEVICE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    BODY_JSON_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    msg_id: int
    client_msg_id: str
    conversation_id: str
    sender_id: str
    sender_device: str
    content_type: str
    body_json: bytes
    created_at: int
    seq: int
    flags: int
    def __init__(self, msg_id: _Optional[int] = ..., client_msg_id: _Optional[str] = ..., conversation_id: _Optional[str] = ..., sender_id: _Optional[str] = ..., sender_device: _Optional[str] = ..., content_type: _Optional[str] = ..., body_json: _Optional[bytes] = ..., created_at: _Optional[int] = ..., seq: _Optional[int] = ..., flags: _Optional[int] = ...) -> None: ...

class MessageBatch(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Message]
    def __init__(self, items: _Optional[_Iterable[_Union[Message, _Mapping]]] = ...) -> None: ...

class ItemError(_message.Message):
    __slots__ = ("code", "message", "details_json")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    DETAILS_JSON_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    details_json: bytes
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ..., details_json: _Optional[bytes] = ...) -> None: ...

class ConversationEvent(_message.Message):
    __slots__ = ("conversation_id", "sync_type", "msg_id", "seq", "actor_id", "timestamp", "for_user", "event_id", "payload_json")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    SYNC_TYPE_FIELD_NUMBER: _ClassVar[int]
    MSG_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    ACTOR_ID_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    FOR_USER_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_JSON_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    sync_type: SyncType
    msg_id: int
    seq: int
    actor_id: str
    timestamp: int
    for_user: str
    event_id: int
    payload_json: bytes
    def __init__(self, conversation_id: _Optional[str] = ..., sync_type: _Optional[_Union[SyncType, str]] = ..., msg_id: _Optional[int] = ..., seq: _Optional[int] = ..., actor_id: _Optional[str] = ..., timestamp: _Optional[int] = ..., for_user: _Optional[str] = ..., event_id: _Optional[int] = ..., payload_json: _Optional[bytes] = ...) -> None: ...

class Cursor(_message.Message):
    __slots__ = ("seq", "event_id")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    seq: int
    event_id: int
    def __init__(self, seq: _Optional[int] = ..., event_id: _Optional[int] = ...) -> None: ...

class Session(_message.Message):
    __slots__ = ("user_id", "device_id", "device_type", "connection_id", "gateway_id", "last_active", "status")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    DEVICE_TYPE_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_ID_FIELD_NUMBER: _ClassVar[int]
    LAST_ACTIVE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    device_id: str
    device_type: DeviceType
    connection_id: str
    gateway_id: str
    last_active: int
    status: SessionStatus
    def __init__(self, user_id: _Optional[str] = ..., device_id: _Optional[str] = ..., device_type: _Optional[_Union[DeviceType, str]] = ..., connection_id: _Optional[str] = ..., gateway_id: _Optional[str] = ..., last_active: _Optional[int] = ..., status: _Optional[_Union[SessionStatus, str]] = ...) -> None: ...
