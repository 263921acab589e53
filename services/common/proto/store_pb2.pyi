from . import common_pb2 as _common_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class ReserveResponse(_message.Message):
    __slots__ = ("msg_id", "duplicate", "stored")
    MSG_ID_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    STORED_FIELD_NUMBER: _ClassVar[int]
    msg_id: int
    duplicate: bool
    stored: bool
    def __init__(self, msg_id: _Optional[int] = ..., duplicate: _Optional[bool] = ..., stored: _Optional[bool] = ...) -> None: ...

class AcceptResponse(_message.Message):
    __slots__ = ("msg_id", "duplicate")
    MSG_ID_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    msg_id: int
    duplicate: bool
    def __init__(self, msg_id: _Optional[int] = ..., duplicate: _Optional[bool] = ...) -> None: ...
