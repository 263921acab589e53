from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Document(_message.Message):
    __slots__ = ("kind", "version", "spec_json", "digest", "updated_at", "updated_by", "comment")
    KIND_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SPEC_JSON_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_BY_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    kind: str
    version: int
    spec_json: str
    digest: str
    updated_at: str
    updated_by: str
    comment: str
    def __init__(self, kind: _Optional[str] = ..., version: _Optional[int] = ..., spec_json: _Optional[str] = ..., digest: _Optional[str] = ..., updated_at: _Optional[str] = ..., updated_by: _Optional[str] = ..., comment: _Optional[str] = ...) -> None: ...

class Applied(_message.Message):
    __slots__ = ("version", "digest")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    version: int
    digest: str
    def __init__(self, version: _Optional[int] = ..., digest: _Optional[str] = ...) -> None: ...

class Hello(_message.Message):
    __slots__ = ("service", "instance_id", "address", "kinds", "applied", "started_at", "software_version", "self_registered")
    class AppliedEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Applied
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Applied, _Mapping]] = ...) -> None: ...
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    KINDS_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    SOFTWARE_VERSION_FIELD_NUMBER: _ClassVar[int]
    SELF_REGISTERED_FIELD_NUMBER: _ClassVar[int]
    service: str
    instance_id: str
    address: str
    kinds: _containers.RepeatedScalarFieldContainer[str]
    applied: _containers.MessageMap[str, Applied]
    started_at: str
    software_version: str
    self_registered: bool
    def __init__(self, service: _Optional[str] = ..., instance_id: _Optional[str] = ..., address: _Optional[str] = ..., kinds: _Optional[_Iterable[str]] = ..., applied: _Optional[_Mapping[str, Applied]] = ..., started_at: _Optional[str] = ..., software_version: _Optional[str] = ..., self_registered: _Optional[bool] = ...) -> None: ...

class Report(_message.Message):
    __slots__ = ("kind", "version", "ok", "error", "digest")
    KIND_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    kind: str
    version: int
    ok: bool
    error: str
    digest: str
    def __init__(self, kind: _Optional[str] = ..., version: _Optional[int] = ..., ok: _Optional[bool] = ..., error: _Optional[str] = ..., digest: _Optional[str] = ...) -> None: ...

class Summary(_message.Message):
    __slots__ = ("json",)
    JSON_FIELD_NUMBER: _ClassVar[int]
    json: bytes
    def __init__(self, json: _Optional[bytes] = ...) -> None: ...

class AgentMessage(_message.Message):
    __slots__ = ("hello", "report", "summary")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    hello: Hello
    report: Report
    summary: Summary
    def __init__(self, hello: _Optional[_Union[Hello, _Mapping]] = ..., report: _Optional[_Union[Report, _Mapping]] = ..., summary: _Optional[_Union[Summary, _Mapping]] = ...) -> None: ...

class Push(_message.Message):
    __slots__ = ("document",)
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    document: Document
    def __init__(self, document: _Optional[_Union[Document, _Mapping]] = ...) -> None: ...

class GetConfigRequest(_message.Message):
    __slots__ = ("kind",)
    KIND_FIELD_NUMBER: _ClassVar[int]
    kind: str
    def __init__(self, kind: _Optional[str] = ...) -> None: ...

class ApplyRequest(_message.Message):
    __slots__ = ("manifest_json", "expect_version", "dry_run", "comment")
    MANIFEST_JSON_FIELD_NUMBER: _ClassVar[int]
    EXPECT_VERSION_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    manifest_json: str
    expect_version: int
    dry_run: bool
    comment: str
    def __init__(self, manifest_json: _Optional[str] = ..., expect_version: _Optional[int] = ..., dry_run: _Optional[bool] = ..., comment: _Optional[str] = ...) -> None: ...

class ApplyResponse(_message.Message):
    __slots__ = ("kind", "version", "previous_version", "changed", "dry_run", "diff")
    KIND_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_VERSION_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    DIFF_FIELD_NUMBER: _ClassVar[int]
    kind: str
    version: int
    previous_version: int
    changed: bool
    dry_run: bool
    diff: str
    def __init__(self, kind: _Optional[str] = ..., version: _Optional[int] = ..., previous_version: _Optional[int] = ..., changed: _Optional[bool] = ..., dry_run: _Optional[bool] = ..., diff: _Optional[str] = ...) -> None: ...

class HistoryRequest(_message.Message):
    __slots__ = ("kind", "limit")
    KIND_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    kind: str
    limit: int
    def __init__(self, kind: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class HistoryResponse(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[Document]
    def __init__(self, entries: _Optional[_Iterable[_Union[Document, _Mapping]]] = ...) -> None: ...

class RollbackRequest(_message.Message):
    __slots__ = ("kind", "to_version", "dry_run")
    KIND_FIELD_NUMBER: _ClassVar[int]
    TO_VERSION_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    kind: str
    to_version: int
    dry_run: bool
    def __init__(self, kind: _Optional[str] = ..., to_version: _Optional[int] = ..., dry_run: _Optional[bool] = ...) -> None: ...

class StatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class KindStatus(_message.Message):
    __slots__ = ("kind", "state", "desired_version", "applied_version", "error", "updated_at")
    KIND_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    DESIRED_VERSION_FIELD_NUMBER: _ClassVar[int]
    APPLIED_VERSION_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    kind: str
    state: str
    desired_version: int
    applied_version: int
    error: str
    updated_at: str
    def __init__(self, kind: _Optional[str] = ..., state: _Optional[str] = ..., desired_version: _Optional[int] = ..., applied_version: _Optional[int] = ..., error: _Optional[str] = ..., updated_at: _Optional[str] = ...) -> None: ...

class InstanceStatus(_message.Message):
    __slots__ = ("service", "instance_id", "address", "health", "started_at", "software_version", "kinds")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    SOFTWARE_VERSION_FIELD_NUMBER: _ClassVar[int]
    KINDS_FIELD_NUMBER: _ClassVar[int]
    service: str
    instance_id: str
    address: str
    health: str
    started_at: str
    software_version: str
    kinds: _containers.RepeatedCompositeFieldContainer[KindStatus]
    def __init__(self, service: _Optional[str] = ..., instance_id: _Optional[str] = ..., address: _Optional[str] = ..., health: _Optional[str] = ..., started_at: _Optional[str] = ..., software_version: _Optional[str] = ..., kinds: _Optional[_Iterable[_Union[KindStatus, _Mapping]]] = ...) -> None: ...

class Rejection(_message.Message):
    __slots__ = ("kind", "mod_revision", "error", "at", "serving_version")
    KIND_FIELD_NUMBER: _ClassVar[int]
    MOD_REVISION_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    SERVING_VERSION_FIELD_NUMBER: _ClassVar[int]
    kind: str
    mod_revision: int
    error: str
    at: str
    serving_version: int
    def __init__(self, kind: _Optional[str] = ..., mod_revision: _Optional[int] = ..., error: _Optional[str] = ..., at: _Optional[str] = ..., serving_version: _Optional[int] = ...) -> None: ...

class StatusResponse(_message.Message):
    __slots__ = ("instances", "documents", "rejections")
    INSTANCES_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    REJECTIONS_FIELD_NUMBER: _ClassVar[int]
    instances: _containers.RepeatedCompositeFieldContainer[InstanceStatus]
    documents: _containers.RepeatedCompositeFieldContainer[Document]
    rejections: _containers.RepeatedCompositeFieldContainer[Rejection]
    def __init__(self, instances: _Optional[_Iterable[_Union[InstanceStatus, _Mapping]]] = ..., documents: _Optional[_Iterable[_Union[Document, _Mapping]]] = ..., rejections: _Optional[_Iterable[_Union[Rejection, _Mapping]]] = ...) -> None: ...

class IssueTokenRequest(_message.Message):
    __slots__ = ("role", "subject", "ttl_s")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    TTL_S_FIELD_NUMBER: _ClassVar[int]
    role: str
    subject: str
    ttl_s: int
    def __init__(self, role: _Optional[str] = ..., subject: _Optional[str] = ..., ttl_s: _Optional[int] = ...) -> None: ...

class IssueTokenResponse(_message.Message):
    __slots__ = ("token", "expires_at", "role", "token_id")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    token: str
    expires_at: int
    role: str
    token_id: str
    def __init__(self, token: _Optional[str] = ..., expires_at: _Optional[int] = ..., role: _Optional[str] = ..., token_id: _Optional[str] = ...) -> None: ...

class RevokeRequest(_message.Message):
    __slots__ = ("token_id", "user", "dry_run", "expires_at")
    TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    token_id: str
    user: str
    dry_run: bool
    expires_at: int
    def __init__(self, token_id: _Optional[str] = ..., user: _Optional[str] = ..., dry_run: _Optional[bool] = ..., expires_at: _Optional[int] = ...) -> None: ...

class RevokeResponse(_message.Message):
    __slots__ = ("kind", "id", "revoked_at", "not_before", "already", "dry_run", "by")
    KIND_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_FIELD_NUMBER: _ClassVar[int]
    NOT_BEFORE_FIELD_NUMBER: _ClassVar[int]
    ALREADY_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    BY_FIELD_NUMBER: _ClassVar[int]
    kind: str
    id: str
    revoked_at: float
    not_before: float
    already: bool
    dry_run: bool
    by: str
    def __init__(self, kind: _Optional[str] = ..., id: _Optional[str] = ..., revoked_at: _Optional[float] = ..., not_before: _Optional[float] = ..., already: _Optional[bool] = ..., dry_run: _Optional[bool] = ..., by: _Optional[str] = ...) -> None: ...

class WatchRequest(_message.Message):
    __slots__ = ("interval_s", "once")
    INTERVAL_S_FIELD_NUMBER: _ClassVar[int]
    ONCE_FIELD_NUMBER: _ClassVar[int]
    interval_s: float
    once: bool
    def __init__(self, interval_s: _Optional[float] = ..., once: _Optional[bool] = ...) -> None: ...

class HealthUpdate(_message.Message):
    __slots__ = ("json",)
    JSON_FIELD_NUMBER: _ClassVar[int]
    json: bytes
    def __init__(self, json: _Optional[bytes] = ...) -> None: ...
