from . import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

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

class ReserveResult(_message.Message):
    __slots__ = ("ok", "error")
    OK_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ok: ReserveResponse
    error: _common_pb2.ItemError
    def __init__(self, ok: _Optional[_Union[ReserveResponse, _Mapping]] = ..., error: _Optional[_Union[_common_pb2.ItemError, _Mapping]] = ...) -> None: ...

class ReserveBatchResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ReserveResult]
    def __init__(self, results: _Optional[_Iterable[_Union[ReserveResult, _Mapping]]] = ...) -> None: ...

class AcceptResult(_message.Message):
    __slots__ = ("ok", "error")
    OK_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ok: AcceptResponse
    error: _common_pb2.ItemError
    def __init__(self, ok: _Optional[_Union[AcceptResponse, _Mapping]] = ..., error: _Optional[_Union[_common_pb2.ItemError, _Mapping]] = ...) -> None: ...

class AcceptBatchResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[AcceptResult]
    def __init__(self, results: _Optional[_Iterable[_Union[AcceptResult, _Mapping]]] = ...) -> None: ...
