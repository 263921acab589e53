from . import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Empty(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ConversationCursor(_message.Message):
    __slots__ = ("conversation_id", "cursor")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    cursor: _common_pb2.Cursor
    def __init__(self, conversation_id: _Optional[str] = ..., cursor: _Optional[_Union[_common_pb2.Cursor, _Mapping]] = ...) -> None: ...

class SyncRequest(_message.Message):
    __slots__ = ("user_id", "device_id", "cursors", "limit")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    CURSORS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    device_id: str
    cursors: _containers.RepeatedCompositeFieldContainer[ConversationCursor]
    limit: int
    def __init__(self, user_id: _Optional[str] = ..., device_id: _Optional[str] = ..., cursors: _Optional[_Iterable[_Union[ConversationCursor, _Mapping]]] = ..., limit: _Optional[int] = ...) -> None: ...

class ConversationSync(_message.Message):
    __slots__ = ("conversation_id", "messages", "events", "has_more", "max_seq", "after_cursor", "next_cursor")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    HAS_MORE_FIELD_NUMBER: _ClassVar[int]
    MAX_SEQ_FIELD_NUMBER: _ClassVar[int]
    AFTER_CURSOR_FIELD_NUMBER: _ClassVar[int]
    NEXT_CURSOR_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    messages: _containers.RepeatedCompositeFieldContainer[_common_pb2.Message]
    events: _containers.RepeatedCompositeFieldContainer[_common_pb2.ConversationEvent]
    has_more: bool
    max_seq: int
    after_cursor: _common_pb2.Cursor
    next_cursor: _common_pb2.Cursor
    def __init__(self, conversation_id: _Optional[str] = ..., messages: _Optional[_Iterable[_Union[_common_pb2.Message, _Mapping]]] = ..., events: _Optional[_Iterable[_Union[_common_pb2.ConversationEvent, _Mapping]]] = ..., has_more: _Optional[bool] = ..., max_seq: _Optional[int] = ..., after_cursor: _Optional[_Union[_common_pb2.Cursor, _Mapping]] = ..., next_cursor: _Optional[_Union[_common_pb2.Cursor, _Mapping]] = ...) -> None: ...

class SyncResponse(_message.Message):
    __slots__ = ("conversations",)
    CONVERSATIONS_FIELD_NUMBER: _ClassVar[int]
    conversations: _containers.RepeatedCompositeFieldContainer[ConversationSync]
    def __init__(self, conversations: _Optional[_Iterable[_Union[ConversationSync, _Mapping]]] = ...) -> None: ...

class Ack(_message.Message):
    __slots__ = ("user_id", "device_id", "conversation_id", "seq", "event_id", "after_seq", "after_event_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    AFTER_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    device_id: str
    conversation_id: str
    seq: int
    event_id: int
    after_seq: int
    after_event_id: int
    def __init__(self, user_id: _Optional[str] = ..., device_id: _Optional[str] = ..., conversation_id: _Optional[str] = ..., seq: _Optional[int] = ..., event_id: _Optional[int] = ..., after_seq: _Optional[int] = ..., after_event_id: _Optional[int] = ...) -> None: ...

class NoteAcksRequest(_message.Message):
    __slots__ = ("acks",)
    ACKS_FIELD_NUMBER: _ClassVar[int]
    acks: _containers.RepeatedCompositeFieldContainer[Ack]
    def __init__(self, acks: _Optional[_Iterable[_Union[Ack, _Mapping]]] = ...) -> None: ...

class MessageRef(_message.Message):
    __slots__ = ("user_id", "msg_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    MSG_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    msg_id: int
    def __init__(self, user_id: _Optional[str] = ..., msg_id: _Optional[int] = ...) -> None: ...

class ReadRequest(_message.Message):
    __slots__ = ("user_id", "conversation_id", "seq")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    conversation_id: str
    seq: int
    def __init__(self, user_id: _Optional[str] = ..., conversation_id: _Optional[str] = ..., seq: _Optional[int] = ...) -> None: ...
