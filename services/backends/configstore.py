"""The ConfigStore port: a revisioned key-value store with CAS, watch and leases (etcd's model).

Adapters: `sqlite:///PATH` (embedded) and `etcd://host:port[,host:port]`.
Contract suite: tests/contract/test_configstore.py.

Revisions are store-wide and increase by one per write transaction (as in etcd);
`mod_revision` is the revision of a key's last write, `version` counts writes to a key
since it was created.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["KeyValue", "WatchEventType", "WatchEvent", "ConfigStore"]


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: str
    value: bytes
    create_revision: int
    mod_revision: int
    version: int
    lease: int = 0


class WatchEventType(enum.Enum):
    PUT = "put"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class WatchEvent:
    type: WatchEventType
    key: str
    value: bytes  # empty for DELETE
    mod_revision: int


@runtime_checkable
class ConfigStore(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def get(self, key: str) -> KeyValue | None: ...

    async def get_prefix(self, prefix: str) -> tuple[list[KeyValue], int]:
        """All keys under prefix, sorted by key, and the store revision they were read at."""

    async def put(self, key: str, value: bytes, *, lease: int = 0) -> int:
        """Write; return the new store revision."""

    async def delete(self, key: str) -> bool: ...

    async def compare_and_swap(self, key: str, value: bytes, *, expected_mod_revision: int, lease: int = 0) -> int:
        """Write only if the key's mod_revision equals expected_mod_revision (0: the key must
        not exist). Return the new revision; raise Conflict otherwise."""

    def watch_prefix(self, prefix: str, *, start_revision: int | None = None) -> AsyncIterator[WatchEvent]:
        """Changes under prefix from start_revision (inclusive; None = from now), in revision
        order, forever. Raise CompactedError if start_revision was compacted away: the caller
        re-lists with get_prefix and watches from the list's revision + 1."""

    async def compact(self, revision: int) -> None: ...

    async def current_revision(self) -> int: ...

    async def lease_grant(self, ttl_s: int) -> int:
        """A new lease id; keys put with it vanish when it expires or is revoked."""

    async def lease_keepalive(self, lease_id: int) -> None:
        """Refresh the lease's TTL; raise NotFound if it already expired."""

    async def lease_revoke(self, lease_id: int) -> None: ...
