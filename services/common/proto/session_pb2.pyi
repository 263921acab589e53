from . import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LoginRequest(_message.Message):
    __slots__ = ("user_id", "device_id", "device_type", "connection_id", "gateway_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    DEVICE_TYPE_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    device_id: str
    device_type: str
    connection_id: str
    gateway_id: str
    def __init__(self, user_id: _Optional[str] = ..., device_id: _Optional[str] = ..., device_type: _Optional[str] = ..., connection_id: _Optional[str] = ..., gateway_id: _Optional[str] = ...) -> None: ...

class LoginResponse(_message.Message):
    __slots__ = ("session", "replaced")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    REPLACED_FIELD_NUMBER: _ClassVar[int]
    session: _common_pb2.Session
    replaced: _common_pb2.Session
    def __init__(self, session: _Optional[_Union[_common_pb2.Session, _Mapping]] = ..., replaced: _Optional[_Union[_common_pb2.Session, _Mapping]] = ...) -> None: ...

class HeartbeatRequest(_message.Message):
    __slots__ = ("user_id", "device_id", "connection_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    device_id: str
    connection_id: str
    def __init__(self, user_id: _Optional[str] = ..., device_id: _Optional[str] = ..., connection_id: _Optional[str] = ...) -> None: ...

class SetStatusRequest(_message.Message):
    __slots__ = ("user_id", "device_id", "status", "connection_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    device_id: str
    status: str
    connection_id: str
    def __init__(self, user_id: _Optional[str] = ..., device_id: _Optional[str] = ..., status: _Optional[str] = ..., connection_id: _Optional[str] = ...) -> None: ...

class LogoutRequest(_message.Message):
    __slots__ = ("user_id", "device_id", "connection_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    device_id: str
    connection_id: str
    def __init__(self, user_id: _Optional[str] = ..., device_id: _Optional[str] = ..., connection_id: _Optional[str] = ...) -> None: ...

class LogoutResponse(_message.Message):
    __slots__ = ("ended",)
    ENDED_FIELD_NUMBER: _ClassVar[int]
    ended: bool
    def __init__(self, ended: _Optional[bool] = ...) -> None: ...

class UsersRequest(_message.Message):
    __slots__ = ("user_ids",)
    USER_IDS_FIELD_NUMBER: _ClassVar[int]
    user_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, user_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class UserRoutes(_message.Message):
    __slots__ = ("user_id", "sessions")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    sessions: _containers.RepeatedCompositeFieldContainer[_common_pb2.Session]
    def __init__(self, user_id: _Optional[str] = ..., sessions: _Optional[_Iterable[_Union[_common_pb2.Session, _Mapping]]] = ...) -> None: ...

class RoutesResponse(_message.Message):
    __slots__ = ("routes",)
    ROUTES_FIELD_NUMBER: _ClassVar[int]
    routes: _containers.RepeatedCompositeFieldContainer[UserRoutes]
    def __init__(self, routes: _Optional[_Iterable[_Union[UserRoutes, _Mapping]]] = ...) -> None: ...

class UserPresence(_message.Message):
    __slots__ = ("user_id", "status")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    status: _common_pb2.SessionStatus
    def __init__(self, user_id: _Optional[str] = ..., status: _Optional[_Union[_common_pb2.SessionStatus, str]] = ...) -> None: ...

class PresenceResponse(_message.Message):
    __slots__ = ("presence",)
    PRESENCE_FIELD_NUMBER: _ClassVar[int]
    presence: _containers.RepeatedCompositeFieldContainer[UserPresence]
    def __init__(self, presence: _Optional[_Iterable[_Union[UserPresence, _Mapping]]] = ...) -> None: ...
