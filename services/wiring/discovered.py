"""Clients of the split deployment: each service Protocol over every live instance.

`pooled(topology, ROUTER)` is a client that satisfies the service's Protocol (the same
one its in-process service object and its gRPC client satisfy, services/<name>/client.py),
so a service cannot tell how its peers are deployed. It is built from the Protocol itself:
every method the Protocol declares is forwarded to the gRPC client of one live instance,
round-robin, moving on to the next when one cannot be reached (services/wiring/discovery.py:
ServicePool). A method the contract below does not describe is refused when the proxy
is built, so a new RPC cannot be left out of the split deployment unnoticed.

Failover resends only when the chosen instance could not be reached at all (refused or
reset connection, no Flare error code), but a reset may come after the instance did the
work, so each method says, as data, what a repeat on another instance costs.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from services.wiring.discovery import ServicePool, Topology
from services.common.errors import BackendUnavailable
from services.delivery.client import DeliveryClient
from services.filter.client import FilterClient, GrpcFilterClient
from services.gateway.client import GrpcGatewayClient, GrpcGatewayDirectory
from services.router.client import GrpcRouterClient, RouterClient
from services.session.client import GrpcSessionClient, SessionClient
from services.store.client import GrpcStoreClient, StoreClient
from services.sync.client import GrpcSyncClient, SyncClient

__all__ = [
    "CONTRACTS",
    "DELIVERY",
    "FILTER",
    "ROUTER",
    "SESSION",
    "STORE",
    "SYNC",
    "Call",
    "Contract",
    "Pooled",
    "TopologyGatewayDirectory",
    "pooled",
    "protocol_methods",
]


@dataclass(frozen=True, slots=True)
class Call:
    """How one Protocol method goes to a pool of instances."""

    repeat: str  # what it costs when the call runs twice (failover after a reset)
    failover: bool = True  # False: only the chosen instance is tried
    buffered: bool = False  # a synchronous method: handed to one live instance's client
    # The argument naming a conversation: its calls go to the instance owning that
    # conversation (ServicePool.owners) instead of round-robin.
    by_conversation: str | None = None
    # The argument holding a batch of Messages: split by owner of each message's
    # conversation, the parts sent at once (per-conversation order holds inside each part).
    split_by_conversation: str | None = None


P = TypeVar("P")


@dataclass(frozen=True, slots=True)
class Contract(Generic[P]):
    service: str  # the topology's service name
    protocol: type[P]
    client: Callable[[str], Any]  # address -> gRPC client
    calls: Mapping[str, Call]


_READ = "nothing: a read"

FILTER = Contract("filter", FilterClient, GrpcFilterClient, {
    "check": Call("the message counts twice against the sender's frequency limit (one early rate_limited at worst)"),
    "apply_config": Call("nothing: applying the same document again swaps in equal rules"),
})
STORE = Contract("store", StoreClient, GrpcStoreClient, {
    "accept": Call("nothing: accept is idempotent per (sender, client_msg_id)"),
    "reserve": Call("nothing: the second finds the first's reservation and returns its msg_id"),
})
SESSION = Contract("session", SessionClient, GrpcSessionClient, {
    "login": Call("nothing: a login again on the same connection is a refresh"),
    "heartbeat": Call("nothing: it sets last_active to now"),
    "set_status": Call("nothing: it sets the status"),
    "logout": Call("nothing: the second finds no session of that connection and answers False"),
    "routes": Call(_READ),
    "presence": Call(_READ),
})
ROUTER = Contract("router", RouterClient, GrpcRouterClient, {
    # By conversation: the router that pushes a conversation's messages gets their acks
    # (its pending set knows the senders) and keeps that conversation's members cached.
    "admit": Call("nothing: the second finds the first's dedup reservation and returns its msg_id",
                  by_conversation="message"),
    "send": Call("nothing: store.accept deduplicates (sender, client_msg_id)", by_conversation="message"),
    "submit": Call("admit and send again (both repeat for nothing, above); the gateway pushes `received` "
                   "once however often `admitted` is called", by_conversation="message"),
    "on_delivered": Call("nothing: DELIVERED is sent once per recipient (pending set, or the shared marker)",
                         by_conversation="conversation_id"),
    "deliver": Call("nothing: gateways drop a (conversation, seq) a connection already has",
                    split_by_conversation="messages"),
    "create_group": Call("the repeat is refused with conflict (the id is taken), though the group was made"),
    "join_group": Call("nothing: joining twice is joining once"),
    "leave_group": Call("nothing: leaving twice is leaving once"),
    "add_members": Call("nothing: the repeat finds them members and adds no one"),
    "remove_members": Call("nothing: the repeat finds them gone and removes no one"),
    "set_role": Call("nothing: setting the same role again changes nothing"),
    "group_info": Call(_READ),
})
SYNC = Contract("sync", SyncClient, GrpcSyncClient, {
    # Not failed over: a sync goes to the instance whose client buffers note_ack (clients[0]),
    # which sends the buffered acks first, so an ack sent before a sync counts for it.
    "sync": Call(_READ, failover=False),
    "note_ack": Call("nothing: a held range applied twice moves a cursor once; with no instance the ack is "
                     "dropped, which only means a few messages are sent again", buffered=True),
    "recall": Call("a second RECALL event for the members, which devices apply idempotently"),
    "delete": Call("a second DELETE event for the user's devices, applied idempotently"),
    "read": Call("a second READ event and `read` ack for the same seq, applied idempotently"),
})
# The store's hand-off of persisted batches: the router's Deliver RPC, nothing else of it.
DELIVERY = Contract("router", DeliveryClient, GrpcRouterClient, {"deliver": ROUTER.calls["deliver"]})

CONTRACTS: tuple[Contract[Any], ...] = (FILTER, STORE, SESSION, ROUTER, SYNC, DELIVERY)


def protocol_methods(protocol: type) -> dict[str, Callable[..., Any]]:
    """The methods a Protocol declares (its own and its bases'), by name."""
    methods: dict[str, Callable[..., Any]] = {}
    for klass in reversed(protocol.__mro__):
        if klass is object or not getattr(klass, "_is_protocol", False) or klass.__module__ == "typing":
            continue
        for name, value in vars(klass).items():
            if not name.startswith("_") and inspect.isfunction(value):
                methods[name] = value
    return methods


class Pooled:
    """A client of every live instance of one service, satisfying `contract.protocol`."""

    def __init__(self, topology: Topology, contract: Contract[Any]) -> None:
        self.contract = contract
        self.pool: ServicePool[Any] = ServicePool(topology, contract.service, contract.client)
        methods = protocol_methods(contract.protocol)
        undescribed = sorted(set(methods) - set(contract.calls))
        if undescribed:
            raise TypeError(f"{contract.protocol.__name__}: no Call for {', '.join(undescribed)} in "
                            "services/wiring/discovered.py (say what a repeat on another instance costs)")
        for name, declared in methods.items():
            forwarder = self._forwarder(name, contract.calls[name], inspect.signature(declared))
            setattr(self, name, functools.wraps(declared)(forwarder))

    def _forwarder(self, name: str, call: Call, signature: inspect.Signature) -> Callable[..., Any]:
        pool = self.pool
        if call.by_conversation or call.split_by_conversation:
            return self._by_conversation(name, call, signature)
        if call.buffered:
            def buffered(*args: Any, **kwargs: Any) -> None:
                clients = pool.clients()
                if clients:
                    getattr(clients[0], name)(*args, **kwargs)
            return buffered
        if call.failover:
            async def failover(*args: Any, **kwargs: Any) -> Any:
                return await pool.call(lambda client: getattr(client, name)(*args, **kwargs))
            return failover

        async def once(*args: Any, **kwargs: Any) -> Any:
            clients = pool.clients()
            if not clients:
                raise BackendUnavailable(f"no {pool.service} instance is registered", service=pool.service)
            return await getattr(clients[0], name)(*args, **kwargs)
        return once

    def _by_conversation(self, name: str, call: Call, signature: inspect.Signature) -> Callable[..., Any]:
        pool = self.pool
        argument = call.by_conversation or call.split_by_conversation

        # The argument's position, found once: binding the signature on every call was
        # measurable in the gateway's profile.
        position = list(signature.parameters).index(argument) - 1  # without the Protocol's self

        def value_of(args: tuple, kwargs: dict) -> Any:
            return args[position] if len(args) > position else kwargs[argument]

        def bound(args: tuple, kwargs: dict) -> inspect.BoundArguments:
            return signature.bind(None, *args, **kwargs)  # None: the Protocol's self

        async def to_owner(*args: Any, **kwargs: Any) -> Any:
            value = value_of(args, kwargs)
            key = value if isinstance(value, str) else value.conversation_id
            return await pool.call(lambda client: getattr(client, name)(*args, **kwargs), key=key)

        if call.by_conversation:
            return to_owner

        async def split(*args: Any, **kwargs: Any) -> Any:
            if len(pool.clients()) < 2:  # one instance (or none): nothing to split
                return await pool.call(lambda client: getattr(client, name)(*args, **kwargs))
            arguments = bound(args, kwargs)
            parts: dict[int, tuple[str, list]] = {}
            for message in arguments.arguments[argument]:
                owner = pool.owners(message.conversation_id)[0]
                parts.setdefault(id(owner), (message.conversation_id, []))[1].append(message)
            if len(parts) == 1:
                key = next(iter(parts.values()))[0]
                return await pool.call(lambda client: getattr(client, name)(*args, **kwargs), key=key)

            calls = []
            for key, messages in parts.values():
                arguments.arguments[argument] = messages
                calls.append((key, arguments.args[1:], dict(arguments.kwargs)))

            async def send_part(key: str, part_args: tuple, part_kwargs: dict) -> Any:
                return await pool.call(lambda client: getattr(client, name)(*part_args, **part_kwargs), key=key)

            results = await asyncio.gather(*(send_part(*c) for c in calls), return_exceptions=True)
            for result in results:  # every part was tried; the first failure is the answer
                if isinstance(result, BaseException):
                    raise result
            return None

        return split

    def __repr__(self) -> str:
        return f"Pooled({self.contract.protocol.__name__} over {self.contract.service!r})"

    async def close(self) -> None:
        await self.pool.close()


def pooled(topology: Topology, contract: Contract[P]) -> P:
    """A `contract.protocol` over the topology's instances of `contract.service` (a Pooled:
    it has `close()` and `pool` too)."""
    return cast(P, Pooled(topology, contract))


class TopologyGatewayDirectory:
    """GatewayDirectory over the gateways in the topology; gateway id = instance id."""

    def __init__(self, topology: Topology) -> None:
        self._topology = topology
        self._directory = GrpcGatewayDirectory(topology.instances("gateway"))
        topology.on_change(self._refresh)

    def get(self, gateway_id: str) -> GrpcGatewayClient | None:
        return self._directory.get(gateway_id)

    async def _refresh(self) -> None:
        await self._directory.update(self._topology.instances("gateway"))

    async def close(self) -> None:
        await self._directory.close()
