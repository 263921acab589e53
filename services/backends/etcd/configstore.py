"""ConfigStore on etcd v3 through etcd3aio (grpc.aio).

`etcd://host:port[,host:port][/namespace]`: several endpoints are balanced round-robin by
gRPC; an optional path is a key namespace, so tests and tenants can share one cluster.
etcd already has the port's model (store-wide revisions, mod_revision CAS, watch from a
revision, leases), so this adapter is a thin translation; every driver error is mapped to
Flare's errors here and nowhere else.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from typing import TypeVar

import grpc
import grpc.aio
from etcd3aio import Etcd3Client, EtcdConnectionError, EtcdError, EtcdTransientError, SortOrder, SortTarget
from etcd3aio import EtcdPermissionDeniedError, EtcdUnauthenticatedError, prefix_range_end
from etcd3aio._protobuf import Compare

from services.backends.configstore import KeyValue, WatchEvent, WatchEventType
from services.common.errors import BackendError, BackendUnavailable, CompactedError, Conflict, InvalidInput, NotFound

__all__ = ["EtcdConfigStore"]

MAX_VALUE_BYTES = 64 * 1024 * 1024  # a whole get_prefix page of the largest documents

T = TypeVar("T")

_EVENT_TYPES = {0: WatchEventType.PUT, 1: WatchEventType.DELETE}


def _translate(exc: BaseException, operation: str) -> Exception:
    if isinstance(exc, (EtcdConnectionError, EtcdTransientError, TimeoutError)):
        return BackendUnavailable(f"etcd {operation}: {exc or 'timed out'}")
    if isinstance(exc, (EtcdUnauthenticatedError, EtcdPermissionDeniedError)):
        return BackendError(f"etcd {operation}: access denied by etcd: {exc}")
    if isinstance(exc, grpc.aio.AioRpcError):
        code = exc.code()
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED):
            return BackendUnavailable(f"etcd {operation}: {code.name} {exc.details() or ''}".strip())
        if code == grpc.StatusCode.NOT_FOUND:  # e.g. a put or keepalive on an expired lease
            return NotFound(f"etcd {operation}: {exc.details() or 'not found'}")
        return BackendError(f"etcd {operation}: {code.name} {exc.details() or ''}".strip())
    return BackendError(f"etcd {operation}: {exc}")


class EtcdConfigStore:
    def __init__(self, endpoints: list[str], *, namespace: str = "", timeout_s: float = 5.0) -> None:
        self._endpoints = endpoints
        self._ns = namespace
        self._timeout = timeout_s
        self._client: Etcd3Client | None = None

    @classmethod
    def from_url(cls, url: str) -> EtcdConfigStore:
        if not url.startswith("etcd://"):
            raise InvalidInput("etcd URL must start with etcd://", url=url)
        rest = url[len("etcd://"):]
        hosts, _, path = rest.partition("/")
        endpoints = [h.strip() for h in hosts.split(",") if h.strip()]
        if not endpoints:
            raise InvalidInput("etcd URL names no endpoint", url=url)
        namespace = "/" + path.strip("/") if path.strip("/") else ""
        return cls(endpoints, namespace=namespace)

    # -- plumbing ---------------------------------------------------------------------------

    @property
    def _c(self) -> Etcd3Client:
        if self._client is None:
            raise BackendError("EtcdConfigStore used before start()")
        return self._client

    async def _call(self, operation: str, awaitable: Awaitable[T]) -> T:
        try:
            return await awaitable
        except (EtcdError, grpc.aio.AioRpcError, TimeoutError) as exc:
            raise _translate(exc, operation) from exc

    def _k(self, key: str) -> bytes:
        return (self._ns + key).encode()

    def _unk(self, raw: bytes) -> str:
        return raw.decode()[len(self._ns):]

    def _kv(self, kv) -> KeyValue:
        return KeyValue(key=self._unk(kv.key), value=bytes(kv.value), create_revision=kv.create_revision,
                        mod_revision=kv.mod_revision, version=kv.version, lease=kv.lease)

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        # Few fast retries: a caller starting against a dead cluster should learn it quickly.
        self._client = Etcd3Client(self._endpoints, rpc_max_attempts=3, watch_reconnect_backoff_seconds=0.2,
                                   watch_max_reconnect_backoff_seconds=2.0)
        # gRPC's 4 MiB default would refuse the control plane's largest documents (a
        # 100k-word filter list is ~7 MB); etcd3aio has no option for it, so its channel
        # options are extended before it connects. The server needs --max-request-bytes too.
        self._client._manager.grpc_options.extend([
            ("grpc.max_send_message_length", MAX_VALUE_BYTES), ("grpc.max_receive_message_length", MAX_VALUE_BYTES),
        ])
        await self._client.connect()
        try:
            await self.current_revision()
        except BackendError:
            await self.close()
            raise

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()

    # -- kv ---------------------------------------------------------------------------------

    async def get(self, key: str) -> KeyValue | None:
        resp = await self._call("get", self._c.kv.get(self._k(key), timeout=self._timeout))
        return self._kv(resp.kvs[0]) if resp.kvs else None

    async def get_prefix(self, prefix: str) -> tuple[list[KeyValue], int]:
        start = self._k(prefix)
        resp = await self._call("get_prefix", self._c.kv.get(
            start, range_end=prefix_range_end(start), sort_order=SortOrder.ASCEND, sort_target=SortTarget.KEY,
            timeout=self._timeout))
        return [self._kv(kv) for kv in resp.kvs], resp.header.revision

    async def put(self, key: str, value: bytes, *, lease: int = 0) -> int:
        resp = await self._call("put", self._c.kv.put(self._k(key), value, lease=lease, timeout=self._timeout))
        return resp.header.revision

    async def delete(self, key: str) -> bool:
        resp = await self._call("delete", self._c.kv.delete(self._k(key), timeout=self._timeout))
        return resp.deleted > 0

    async def compare_and_swap(self, key: str, value: bytes, *, expected_mod_revision: int, lease: int = 0) -> int:
        raw = self._k(key)
        # etcd compares a missing key's mod_revision as 0, which is exactly the port's "must not exist".
        guard = Compare(result=Compare.EQUAL, target=Compare.MOD, key=raw, mod_revision=expected_mod_revision)
        kv = self._c.kv
        resp = await self._call("compare_and_swap", kv.txn(
            [guard], [kv.txn_op_put(raw, value, lease=lease)], [kv.txn_op_get(raw)], timeout=self._timeout))
        if not resp.succeeded:
            found = resp.responses[0].response_range.kvs if resp.responses else []
            actual = found[0].mod_revision if found else 0
            raise Conflict(f"{key} changed: mod_revision is {actual}, expected {expected_mod_revision}",
                           key=key, mod_revision=actual)
        return resp.header.revision

    async def compact(self, revision: int) -> None:
        try:
            await self._c.kv.compact(revision, physical=True, timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            details = exc.details() or ""
            if "compacted" in details:  # already compacted at or past it: nothing to do
                return
            if "future revision" in details:
                raise InvalidInput(f"cannot compact to future revision {revision}") from exc
            raise _translate(exc, "compact") from exc
        except (EtcdError, TimeoutError) as exc:
            raise _translate(exc, "compact") from exc

    async def current_revision(self) -> int:
        resp = await self._call("current_revision", self._c.kv.get(b"\0", count_only=True, timeout=self._timeout))
        return resp.header.revision

    # -- watch ------------------------------------------------------------------------------

    async def watch_prefix(self, prefix: str, *, start_revision: int | None = None) -> AsyncIterator[WatchEvent]:
        start = self._k(prefix)
        # etcd3aio re-opens the stream on UNAVAILABLE from the revision after the last one it saw,
        # so an etcd restart is invisible here; only compaction and hard errors end the watch.
        stream = self._c.watch.watch(start, range_end=prefix_range_end(start), start_revision=start_revision or 0)
        try:
            async for resp in stream:
                if resp.compact_revision > 0:
                    raise CompactedError(f"revision {start_revision} of {prefix!r} was compacted",
                                         compact_revision=resp.compact_revision)
                if resp.canceled:
                    raise BackendError(f"etcd cancelled the watch on {prefix!r}: {resp.cancel_reason}")
                for ev in resp.events:
                    yield WatchEvent(type=_EVENT_TYPES[ev.type], key=self._unk(ev.kv.key),
                                     value=bytes(ev.kv.value) if ev.type == 0 else b"", mod_revision=ev.kv.mod_revision)
        except (EtcdError, grpc.aio.AioRpcError) as exc:
            raise _translate(exc, "watch") from exc
        finally:
            await stream.aclose()

    # -- leases -----------------------------------------------------------------------------

    async def lease_grant(self, ttl_s: int) -> int:
        resp = await self._call("lease_grant", self._c.lease.grant(ttl_s, timeout=self._timeout))
        return resp.ID

    async def lease_keepalive(self, lease_id: int) -> None:
        call = self._c.lease.keep_alive(lease_id)
        try:
            async with asyncio.timeout(self._timeout):
                resp = await call.read()
        except (grpc.aio.AioRpcError, TimeoutError) as exc:
            raise _translate(exc, "lease_keepalive") from exc
        finally:
            call.cancel()
        if resp is grpc.aio.EOF or resp.TTL <= 0:
            raise NotFound(f"lease {lease_id} has expired", lease=lease_id)

    async def lease_revoke(self, lease_id: int) -> None:
        try:
            await self._c.lease.revoke(lease_id, timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:  # already gone: revoking is idempotent
                return
            raise _translate(exc, "lease_revoke") from exc
        except (EtcdError, TimeoutError) as exc:
            raise _translate(exc, "lease_revoke") from exc
