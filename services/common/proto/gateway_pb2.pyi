from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class Empty(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PushRequest(_message.Message):
    __slots__ = ("connection_ids", "frame_index", "frames", "frame_conversation_ids", "frame_seqs")
    CONNECTION_IDS_FIELD_NUMBER: _ClassVar[int]
    FRAME_INDEX_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    FRAME_CONVERSATION_IDS_FIELD_NUMBER: _ClassVar[int]
    FRAME_SEQS_FIELD_NUMBER: _ClassVar[int]
    connection_ids: _containers.RepeatedScalarFieldContainer[str]
    frame_index: _containers.RepeatedScalarFieldContainer[int]
    frames: _containers.RepeatedScalarFieldContainer[bytes]
    frame_conversation_ids: _containers.RepeatedScalarFieldContainer[str]
    frame_seqs: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, connection_ids: _Optional[_Iterable[str]] = ..., frame_index: _Optional[_Iterable[int]] = ..., frames: _Optional[_Iterable[bytes]] = ..., frame_conversation_ids: _Optional[_Iterable[str]] = ..., frame_seqs: _Optional[_Iterable[int]] = ...) -> None: ...

class PushResponse(_message.Message):
    __slots__ = ("gone",)
    GONE_FIELD_NUMBER: _ClassVar[int]
    gone: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, gone: _Optional[_Iterable[str]] = ...) -> None: ...

class CloseRequest(_message.Message):
    __slots__ = ("connection_id", "code", "reason")
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    connection_id: str
    code: int
    reason: str
    def __init__(self, connection_id: _Optional[str] = ..., code: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...
