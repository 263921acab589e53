"""The ObjectStore port: blobs by key (S3's model). Used by media and the L2 archive.

Adapters: `file://DIR` (embedded, a directory) and `s3://access:secret@host:port/bucket`
(any S3 server: SeaweedFS in the tests). Contract suite: tests/contract/test_objectstore.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["ObjectInfo", "ObjectStore"]


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    size: int
    content_type: str
    etag: str


@runtime_checkable
class ObjectStore(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def put(self, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> ObjectInfo: ...

    async def get(self, key: str) -> bytes:
        """Raise NotFound if absent."""

    async def stat(self, key: str) -> ObjectInfo:
        """Raise NotFound if absent."""

    async def list(self, prefix: str = "") -> list[ObjectInfo]:
        """Every object whose key starts with prefix, sorted by key."""

    async def delete(self, key: str) -> None:
        """Idempotent."""

    async def presigned_get_url(self, key: str, *, expires_s: int = 3600) -> str: ...
