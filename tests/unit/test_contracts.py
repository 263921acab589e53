"""Every service contract holds in every shape.

One Protocol per service (services/<name>/client.py): the service object satisfies it
in-process, the gRPC client over the wire, and the pooled proxy of the split deployment
(services/wiring/discovered.py) forwards every method of it. A method added to a Protocol and
forgotten in one of them fails here, not in production.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from services.delivery import Delivery, DeliveryClient, GatewayClient
from services.wiring.discovered import CONTRACTS, Call, Contract, Pooled, protocol_methods
from services.filter import FilterClient, FilterService
from services.filter.client import GrpcFilterClient
from services.gateway import InProcessGatewayClient
from services.gateway.client import GrpcGatewayClient
from services.router import RouterClient, RouterService
from services.router.client import GrpcRouterClient
from services.session import SessionClient, SessionService
from services.session.client import GrpcSessionClient
from services.store import StoreClient, StoreService
from services.store.client import GrpcStoreClient
from services.sync import SyncClient, SyncService
from services.sync.client import GrpcSyncClient

IMPLEMENTATIONS: list[tuple[type, type]] = [
    (FilterClient, FilterService), (FilterClient, GrpcFilterClient),
    (StoreClient, StoreService), (StoreClient, GrpcStoreClient),
    (SessionClient, SessionService), (SessionClient, GrpcSessionClient),
    (RouterClient, RouterService), (RouterClient, GrpcRouterClient),
    (SyncClient, SyncService), (SyncClient, GrpcSyncClient),
    (DeliveryClient, Delivery), (DeliveryClient, GrpcRouterClient), (DeliveryClient, RouterService),
    (GatewayClient, InProcessGatewayClient), (GatewayClient, GrpcGatewayClient),
]


def _shape(function: Any) -> list[tuple[str, Any, Any]]:
    """Parameters as (name, kind, default), without `self`. Not their annotations: an
    implementation may accept more than the Protocol asks (Iterable for Sequence)."""
    signature = inspect.signature(function)
    return [(p.name, p.kind, p.default) for p in signature.parameters.values() if p.name != "self"]


@pytest.mark.parametrize(("protocol", "implementation"), IMPLEMENTATIONS,
                         ids=[f"{i.__name__}-{p.__name__}" for p, i in IMPLEMENTATIONS])
def test_each_implementation_has_the_protocol_s_methods_and_signatures(protocol: type, implementation: type) -> None:
    methods = protocol_methods(protocol)
    assert methods, f"{protocol.__name__} declares no methods?"
    for name, declared in methods.items():
        actual = getattr(implementation, name, None)
        assert actual is not None, f"{implementation.__name__} lacks {protocol.__name__}.{name}"
        assert inspect.iscoroutinefunction(actual) == inspect.iscoroutinefunction(declared), (
            f"{implementation.__name__}.{name}: async in one, not the other")
        assert _shape(actual) == _shape(declared), f"{implementation.__name__}.{name} differs from the Protocol"
        assert inspect.signature(actual).return_annotation == inspect.signature(declared).return_annotation, (
            f"{implementation.__name__}.{name} answers another type than the Protocol")


# -- the pooled proxy -----------------------------------------------------------------------
class _Topology:
    """One registered instance; the proxy's pool only lists and watches."""

    def __init__(self, service: str) -> None:
        self._service = service

    def instances(self, service: str) -> dict[str, str]:
        return {"only": "127.0.0.1:1"} if service == self._service else {}

    def on_change(self, listener: Any) -> None:
        pass


class _Recorder:
    """Stands in for the gRPC client of the one instance: records every call it gets."""

    def __init__(self, protocol: type, address: str) -> None:
        self.address = address
        self.calls: list[tuple[str, tuple, dict]] = []
        for name, declared in protocol_methods(protocol).items():
            setattr(self, name, self._recording(name, inspect.iscoroutinefunction(declared)))

    def _recording(self, name: str, is_async: bool) -> Any:
        def record(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((name, args, kwargs))
            return (name, args, kwargs)

        async def record_async(*args: Any, **kwargs: Any) -> Any:
            return record(*args, **kwargs)

        return record_async if is_async else record

    async def close(self) -> None:
        pass


def _arguments(declared: Any) -> tuple[tuple, dict]:
    """A distinct placeholder for every parameter, positional or keyword as declared."""
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for name, kind, _ in _shape(declared):
        if kind is inspect.Parameter.KEYWORD_ONLY:
            kwargs[name] = f"<{name}>"
        else:
            args.append(f"<{name}>")
    return tuple(args), kwargs


@pytest.mark.parametrize("contract", CONTRACTS, ids=[f"{c.service}-{c.protocol.__name__}" for c in CONTRACTS])
async def test_the_pooled_proxy_forwards_every_protocol_method(contract: Contract[Any]) -> None:
    recorders: list[_Recorder] = []

    def client(address: str) -> _Recorder:
        recorders.append(_Recorder(contract.protocol, address))
        return recorders[-1]

    proxy = Pooled(_Topology(contract.service), Contract(contract.service, contract.protocol, client, contract.calls))
    methods = protocol_methods(contract.protocol)
    assert set(contract.calls) == set(methods), "a Call for a method the Protocol no longer has"
    assert isinstance(proxy, contract.protocol)
    for name, declared in methods.items():
        args, kwargs = _arguments(declared)
        forwarded = getattr(proxy, name)
        assert _shape(forwarded) == _shape(declared)  # help() and signature() show the Protocol's
        answer = forwarded(*args, **kwargs)
        if inspect.iscoroutinefunction(declared):
            assert await answer == (name, args, kwargs)  # the instance's answer, unchanged
        else:
            assert answer is None  # buffered: handed over, not awaited
        assert recorders[0].calls[-1] == (name, args, kwargs)
    assert [c[0] for c in recorders[0].calls] == list(methods)  # each exactly once, nothing else
    await proxy.close()


def test_a_protocol_method_without_a_call_is_refused_when_the_proxy_is_built() -> None:
    calls = {"check": Call("nothing")}  # FilterClient also has apply_config
    with pytest.raises(TypeError, match="apply_config"):
        Pooled(_Topology("filter"), Contract("filter", FilterClient, GrpcFilterClient, calls))


async def test_with_no_instance_the_proxy_is_backend_unavailable_and_drops_buffered_calls() -> None:
    from services.common.errors import BackendUnavailable
    from services.wiring.discovered import SYNC

    proxy = Pooled(_Topology("nothing-registered"), SYNC)
    with pytest.raises(BackendUnavailable, match="no sync instance"):
        await proxy.recall("alice", 1)
    assert proxy.note_ack("alice", "phone", "c2c:alice:bob", seq=1) is None  # dropped, as documented
    await proxy.close()


# -- the gRPC binding ---------------------------------------------------------------------
API_BINDINGS = ["filter", "gateway", "router", "session", "store", "sync"]


@pytest.mark.parametrize("service", API_BINDINGS)
def test_every_rpc_of_the_proto_is_served_by_api_py(service: str) -> None:
    """The generated servicer answers UNIMPLEMENTED for an RPC api.py does not override."""
    import importlib

    pb = importlib.import_module(f"services.common.proto.{service}_pb2")
    api = importlib.import_module(f"services.{service}.api")
    (descriptor,) = pb.DESCRIPTOR.services_by_name.values()
    binding = next(v for k, v in vars(api).items() if k.endswith("Api") and isinstance(v, type))
    rpcs = [m.name for m in descriptor.methods]
    assert rpcs
    missing = [rpc for rpc in rpcs if rpc not in vars(binding)]
    assert not missing, f"{binding.__name__} does not serve {missing}"
