"""Service discovery for the split deployment: who is running, and a client for each.

Every split instance registers itself under `/flare/topology/<service>/<instance>` with a
lease (controlplane.agent.ConfigAgent with `registry=`), so a dead instance vanishes
within the lease TTL and a live one is there as long as it keeps its lease.

    topology = Topology(configstore)
    await topology.start()                       # list once, then watch
    routers = ServicePool(topology, "router", GrpcRouterClient)
    await routers.call(lambda router: router.send(message))   # round-robin, failover

`ServicePool.call` moves on to the next instance only when the chosen one could not be
reached (connection refused or reset): an error the instance itself returned — including
its own BackendUnavailable for a backend it cannot reach — is the answer, and goes to the
caller unchanged, so a Kafka outage is not retried once per router.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import grpc
import grpc.aio
import orjson

from controlplane import keys
from services.backends.configstore import ConfigStore, WatchEvent, WatchEventType
from services.backends.prefixwatch import PrefixWatch
from services.common.errors import BackendUnavailable
from services.common.grpc_errors import CODE_KEY

__all__ = ["TOPOLOGY_PREFIX", "Topology", "ServicePool", "instance_unreachable"]

log = logging.getLogger("flare.discovery")

TOPOLOGY_PREFIX = keys.TOPOLOGY  # the control plane spells the key layout; wiring may import it

C = TypeVar("C")
T = TypeVar("T")
Listener = Callable[[], Awaitable[None]]


def _parse(key: str, value: bytes) -> tuple[str, str, str] | None:
    """(service, instance_id, address) of one topology entry, None if it is not one."""
    parts = key[len(TOPOLOGY_PREFIX):].split("/", 1)
    if len(parts) != 2 or not all(parts):
        return None
    try:
        address = orjson.loads(value).get("address", "")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    # Instances the control plane registered for an in-process link have no gRPC address.
    if not isinstance(address, str) or ":" not in address:
        return None
    return parts[0], parts[1], address


class Topology:
    """`{service: {instance_id: address}}`, kept current by a watch on the topology prefix."""

    def __init__(self, store: ConfigStore) -> None:
        self._store = store
        self._instances: dict[str, dict[str, str]] = {}
        self._listeners: list[Listener] = []
        self._changed = asyncio.Condition()
        self._watch = PrefixWatch(store, TOPOLOGY_PREFIX, relist=self._relist, apply=self._on_event,
                                  what="topology", logger=log)

    def instances(self, service: str) -> dict[str, str]:
        """Live instances of `service`: instance_id -> gRPC address (a copy)."""
        return dict(self._instances.get(service, {}))

    def counts(self) -> dict[str, int]:
        """How many live instances of each service this process sees."""
        return {service: len(instances) for service, instances in self._instances.items() if instances}

    def on_change(self, listener: Listener) -> None:
        """Await `listener()` after every change (gateway directories, client pools)."""
        self._listeners.append(listener)

    async def start(self) -> None:
        """List once, then follow the watch (a lost one is repaired by listing again)."""
        await self._watch.start()

    async def stop(self) -> None:
        await self._watch.stop()

    async def wait_for(self, service: str, count: int = 1, *, timeout: float = 30.0) -> dict[str, str]:
        """Until at least `count` instances of `service` are registered."""
        async with asyncio.timeout(timeout):
            async with self._changed:
                await self._changed.wait_for(lambda: len(self._instances.get(service, {})) >= count)
        return self.instances(service)

    async def _relist(self) -> int:
        kvs, revision = await self._store.get_prefix(TOPOLOGY_PREFIX)
        instances: dict[str, dict[str, str]] = {}
        for kv in kvs:
            entry = _parse(kv.key, kv.value)
            if entry is not None:
                instances.setdefault(entry[0], {})[entry[1]] = entry[2]
        await self._publish(instances)
        return revision

    def _apply(self, key: str, value: bytes | None) -> dict[str, dict[str, str]]:
        instances = {service: dict(members) for service, members in self._instances.items()}
        if value is None:
            parts = key[len(TOPOLOGY_PREFIX):].split("/", 1)
            if len(parts) == 2:
                instances.get(parts[0], {}).pop(parts[1], None)
        else:
            entry = _parse(key, value)
            if entry is not None:
                instances.setdefault(entry[0], {})[entry[1]] = entry[2]
        return instances

    async def _publish(self, instances: dict[str, dict[str, str]]) -> None:
        if instances == self._instances:
            return
        async with self._changed:
            self._instances = instances
            self._changed.notify_all()
        for listener in self._listeners:
            try:
                await listener()
            except Exception:  # one bad listener must not stop discovery for the others
                log.exception("topology listener failed")

    async def _on_event(self, event: WatchEvent) -> None:
        value = event.value if event.type is WatchEventType.PUT else None
        await self._publish(self._apply(event.key, value))


def instance_unreachable(exc: BaseException) -> bool:
    """True when a gRPC call failed because the instance could not be reached at all.

    A Flare server answers errors with its error code in the trailing metadata; a refused
    or reset connection carries none. A deadline is not failed over: the instance may be
    working on the request, and a second instance would only double the load on whatever
    made it slow (the caller's own retry, deduplicated, is the way on).
    """
    if not isinstance(exc, BackendUnavailable):
        return False
    cause = exc.__cause__
    if not isinstance(cause, grpc.aio.AioRpcError) or cause.code() != grpc.StatusCode.UNAVAILABLE:
        return False
    return not any(key == CODE_KEY for key, _ in (cause.trailing_metadata() or ()))


_MAX_OWNER_KEYS = 65_536  # owner lists cached (a few hundred bytes each)


def _rank(instance_id: str, key: str) -> bytes:
    # A hash every process computes alike (Python's str hash is salted per process).
    return hashlib.blake2b(f"{instance_id}\0{key}".encode(), digest_size=8).digest()


class ServicePool(Generic[C]):
    """gRPC clients for every live instance of one service, used round-robin, or by key.

    `factory(address)` builds a client (one channel each, opened lazily); clients of
    instances that left the topology are closed.

    With a key (a conversation id), every caller in every process picks the same instance
    while the topology holds (rendezvous hashing: the instance ranking highest for the key),
    and when it leaves, only its keys move. The router that pushed a conversation's
    messages then also gets their acks, and finds them in its own pending set instead of
    asking the MessageDB and the shared cache who sent them.
    """

    def __init__(self, topology: Topology, service: str, factory: Callable[[str], C]) -> None:
        self.service = service
        self._topology = topology
        self._factory = factory
        self._clients: dict[str, C] = {}  # address -> client
        self._turn = itertools.count()
        self._owners: dict[str, list[C]] = {}  # key -> owners(key), until the topology changes
        topology.on_change(self._prune)

    def _live(self) -> list[tuple[str, C]]:
        live: list[tuple[str, C]] = []
        for instance_id, address in sorted(self._topology.instances(self.service).items()):
            client = self._clients.get(address)
            if client is None:
                client = self._clients[address] = self._factory(address)
            live.append((instance_id, client))
        return live

    def clients(self) -> list[C]:
        """One client per live instance, rotated so successive callers start elsewhere."""
        live = [client for _, client in self._live()]
        if not live:
            return []
        start = next(self._turn) % len(live)
        return live[start:] + live[:start]

    def owners(self, key: str) -> list[C]:
        """One client per live instance, the instance owning `key` first, then the next
        ranked (where its keys go if it leaves), and so on."""
        cached = self._owners.get(key)
        if cached is not None:
            return cached
        live = self._live()
        if len(live) > 1:
            live.sort(key=lambda entry: _rank(entry[0], key), reverse=True)
        if len(self._owners) >= _MAX_OWNER_KEYS:  # bounded: forget all, re-rank as keys come back
            self._owners.clear()
        owners = self._owners[key] = [client for _, client in live]
        return owners

    async def call(self, operation: Callable[[C], Awaitable[T]], *, key: str | None = None) -> T:
        """Run `operation` on the next instance (or `key`'s owner); on to the next while
        they do not answer."""
        candidates = self.clients() if key is None else self.owners(key)
        if not candidates:
            raise BackendUnavailable(f"no {self.service} instance is registered", service=self.service)
        failure: BackendUnavailable | None = None
        for client in candidates:
            try:
                return await operation(client)
            except BackendUnavailable as exc:
                if not instance_unreachable(exc):
                    raise
                failure = exc
                log.info("%s instance unreachable (%s); trying the next", self.service, exc)
        assert failure is not None
        raise failure

    async def _prune(self) -> None:
        self._owners.clear()  # the ranking is over the instances that were live
        live = set(self._topology.instances(self.service).values())
        for address in [a for a in self._clients if a not in live]:
            client = self._clients.pop(address)
            close = getattr(client, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    await close()

    async def close(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            close = getattr(client, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    await close()
