"""gRPC plumbing shared by every service: channel and server options, a server starter,
and the base of the `Grpc…Client` classes (one channel, a deadline on every call, errors
translated to Flare errors at this edge).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio

from services.common.errors import BackendError

from .grpc_batch import BatchRpc
from .grpc_errors import error_from_rpc

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "MAX_MESSAGE_BYTES",
    "channel_options",
    "server_options",
    "open_channel",
    "GrpcServer",
    "start_server",
    "GrpcClientBase",
    "ignore_poller_noise",
]

DEFAULT_TIMEOUT_S = 5.0
# Push batches and sync pages are the big messages: a sync page is at most page_limit
# (≤ 5000) messages of ≤ 16 KiB bodies per conversation, so 64 MiB leaves headroom while
# still refusing a runaway request before it is buffered whole.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024

Registration = Callable[[grpc.aio.Server], None]


def ignore_poller_noise(loop: asyncio.AbstractEventLoop) -> None:
    """Drop grpc.aio's known spurious callback errors on `loop`, pass the rest on.

    grpc.aio binds one completion-queue poller to every event loop that ever used it. A
    process that runs several loops one after another (flarectl commands run in-process,
    as the tests do) then has the poller wake a loop for an event of a closed one, whose
    callback fails with "Event loop is closed" (or BlockingIOError when two loops race for
    the wake-up byte); the default handler printed that traceback into the next
    command's stderr, ahead of its error message. The calls themselves are unaffected
    (grpc issues 25364 and 36096)."""
    def handle(loop: asyncio.AbstractEventLoop, context: dict) -> None:
        exc = context.get("exception")
        if isinstance(exc, (RuntimeError, BlockingIOError)) and "PollerCompletionQueue" in repr(context.get("handle")):
            return
        loop.default_exception_handler(context)

    loop.set_exception_handler(handle)


def channel_options(*, max_message_bytes: int = MAX_MESSAGE_BYTES) -> list[tuple[str, int]]:
    return [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
        # Pings notice a peer that vanished without a FIN (host down, NAT/LB dropped the
        # flow) within ~30 s, instead of the first call after it hanging until its deadline.
        ("grpc.keepalive_time_ms", 20_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        # A restarted peer is back within a second or two; do not sit in a long backoff.
        ("grpc.initial_reconnect_backoff_ms", 250),
        ("grpc.min_reconnect_backoff_ms", 250),
        ("grpc.max_reconnect_backoff_ms", 5_000),
    ]


def server_options(*, max_message_bytes: int = MAX_MESSAGE_BYTES) -> list[tuple[str, int]]:
    return [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.keepalive_time_ms", 60_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
        # Accept the clients' 20 s keepalive pings; the default (5 min) answers them with
        # GOAWAY "too_many_pings" and every idle channel would reconnect.
        ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
        ("grpc.http2.max_pings_without_data", 0),
        # Two servers on one port must fail loudly, not silently share the traffic.
        ("grpc.so_reuseport", 0),
    ]


def open_channel(
    target: str, *, credentials: grpc.ChannelCredentials | None = None, max_message_bytes: int = MAX_MESSAGE_BYTES,
) -> grpc.aio.Channel:
    """A channel to `host:port` (or any gRPC target); TLS when credentials are given."""
    options = channel_options(max_message_bytes=max_message_bytes)
    if credentials is not None:
        return grpc.aio.secure_channel(target, credentials, options=options)
    return grpc.aio.insecure_channel(target, options=options)


@dataclass(slots=True)
class GrpcServer:
    server: grpc.aio.Server
    host: str
    port: int  # the bound port (the one the OS picked when asked for 0)

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    async def stop(self, grace: float | None = 1.0) -> None:
        """Refuse new calls, let running ones finish for `grace` seconds, then cancel them."""
        await self.server.stop(grace)

    async def wait(self) -> None:
        await self.server.wait_for_termination()


async def start_server(
    *registrations: Registration,
    host: str = "127.0.0.1",
    port: int = 0,
    credentials: grpc.ServerCredentials | None = None,
    max_message_bytes: int = MAX_MESSAGE_BYTES,
) -> GrpcServer:
    """Start one grpc.aio server carrying every registered servicer.

    Each registration adds a servicer (`lambda s: add_FilterServicer_to_server(api, s)`,
    or a service's `api.register(service)`), so split mode can serve one service per
    process and a test or a small deployment several on one port.
    """
    server = grpc.aio.server(options=server_options(max_message_bytes=max_message_bytes))
    for register in registrations:
        register(server)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        if credentials is not None:
            bound = server.add_secure_port(address, credentials)
        else:
            bound = server.add_insecure_port(address)
    except RuntimeError as exc:  # grpcio raises on a port it cannot bind (in use, bad host)
        raise BackendError(f"cannot listen for gRPC on {address}: {exc}", address=address) from exc
    if bound == 0:
        raise BackendError(f"cannot listen for gRPC on {address}", address=address)
    await server.start()
    return GrpcServer(server, host, bound)


class GrpcClientBase:
    """One channel (owned when built from a target string), a deadline on every call.

    Subclasses set `service_name` and `stub_class`. A channel built from a target is
    opened on first use, not in __init__: grpc.aio binds a channel to the event loop it
    is created on, and clients are often built before the loop runs.
    """

    service_name = "service"
    stub_class: Callable[[grpc.aio.Channel], Any]

    def __init__(self, channel: grpc.aio.Channel | str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self._channel: grpc.aio.Channel | None
        if isinstance(channel, str):
            self.target = channel
            self._channel = None
            self._owns_channel = True
        else:
            self.target = "(shared channel)"
            self._channel = channel
            self._owns_channel = False
        self.timeout_s = timeout_s
        self._what = f"{self.service_name} at {self.target}"
        self._stub_instance: Any = None

    @property
    def _stub(self) -> Any:
        stub = self._stub_instance
        if stub is None:
            if self._channel is None:
                self._channel = open_channel(self.target)
            stub = self._stub_instance = self.stub_class(self._channel)
        return stub

    async def close(self) -> None:
        """Close the channel if this client opened it (a shared channel is the owner's)."""
        channel, self._stub_instance = self._channel, None
        if self._owns_channel and channel is not None:
            self._channel = None
            await channel.close()

    async def __aenter__(self) -> GrpcClientBase:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _batched(self, rpc: str, **options: Any) -> BatchRpc[Any]:
        """The client's calls of batch RPC `rpc` (services.common.grpc_batch), batched."""
        return BatchRpc(lambda: self._stub, self.service_name, rpc, what=self._what, timeout_s=self.timeout_s,
                        **options)

    async def _call(self, method: grpc.aio.UnaryUnaryMultiCallable, request: Any, *,
                    timeout_s: float | None = None) -> Any:
        try:
            return await method(request, timeout=timeout_s or self.timeout_s)
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc(exc, self._what) from exc
