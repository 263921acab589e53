"""One gateway worker process of the monolith: `python -m services.wiring.gateway_worker --fd N`.

Started by services.wiring.gateway_workers with one end of a socketpair as fd N, the
batched channel to the core (services/common/channel.py). It asks the core for its
settings (config, gateway id, node id, token secret: never on the command line), runs a
GatewayService on the shared port (SO_REUSEPORT: the kernel spreads new connections over
the workers), reaches router, sync and session through the channel and takes pushes from
the core through it (the delivery seam, services/delivery/seam.py). It exits when the
channel closes: a worker never outlives its core.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import socket
import sys

from services.backends.revocations import Revocations
from services.common.channel import Channel, Remote
from services.common.ids import MessageIdGenerator
from services.common.logs import setup_logging
from services.common.metrics import metric_snapshot
from services.common.runtime import freeze_startup_heap, tune_interpreter
from services.common.stalls import watchdog_from_env
from services.gateway import GatewayService

__all__ = ["main", "GATEWAY_METHODS"]

log = logging.getLogger("flare.gateway.worker")

# What the core may call on a worker: the delivery seam (GatewayClient) and stop.
GATEWAY_METHODS = frozenset({"push", "close_connection", "stop_worker", "metrics", "revocation"})
_STATS_INTERVAL_S = 1.0


class _RemotePeers:
    """GatewayDirectory for a worker: another worker's connection is closed through the core."""

    def __init__(self, channel: Channel) -> None:
        self._channel = channel

    def get(self, gateway_id: str) -> _RemotePeer:
        return _RemotePeer(self._channel, gateway_id)


class _RemotePeer:
    def __init__(self, channel: Channel, gateway_id: str) -> None:
        self._channel = channel
        self.gateway_id = gateway_id

    async def push(self, pushes) -> list[str]:  # pragma: no cover - peers only close connections
        raise NotImplementedError

    async def close_connection(self, connection_id: str, *, code: int, reason: str) -> None:
        await self._channel.call("core", "close_connection", (self.gateway_id, connection_id),
                                 {"code": code, "reason": reason})


class _Router(Remote):
    """The core's router; DELIVERED reports are notifications: nothing waits for them, and
    a failure there is logged in the core (the message itself is delivered and stored).
    submit is one call whose progress is the reservation (Channel.call's `progress`)."""

    async def submit(self, message, admitted):
        return await self._channel.call("router", "submit", (message,), progress=admitted)

    async def on_delivered(self, user_id: str, conversation_id: str, seqs) -> None:
        self._channel.notify("router", "on_delivered", (user_id, conversation_id, list(seqs)))

    async def on_delivered_many(self, reports) -> None:
        self._channel.notify("router", "on_delivered_many", (reports,))


class _WorkerTarget:
    """What the channel exposes to the core as "gateway"."""

    def __init__(self, gateway: GatewayService, stopped: asyncio.Event, revocations: Revocations | None) -> None:
        self._gateway = gateway
        self._stopped = stopped
        self._revocations = revocations

    def push(self, pushes) -> list[str]:
        return self._gateway.push(pushes)

    def close_connection(self, connection_id: str, *, code: int, reason: str) -> None:
        self._gateway.close_connection(connection_id, code=code, reason=reason)

    def stop_worker(self) -> None:
        self._stopped.set()

    def metrics(self) -> list[list]:
        return metric_snapshot()

    def revocation(self, key: str, value: bytes) -> None:
        if self._revocations is not None:
            self._revocations.apply(key, value)


async def run(fd: int) -> None:
    sock = socket.socket(fileno=fd)
    reader, writer = await asyncio.open_unix_connection(sock=sock)
    channel = Channel(reader, writer, name="gateway-worker")
    stopped = asyncio.Event()
    channel.on_close = stopped.set
    channel.start()
    settings = await channel.call("core", "worker_settings")
    setup_logging(settings["log_level"], fmt=settings["log_format"])
    revocations = None
    if settings["revocations"] is not None:
        # A mirror of the core's mirror: seeded now, then told every change (no store here).
        revocations = Revocations(store=None)  # type: ignore[arg-type]
        for key, value in settings["revocations"]:
            revocations.apply(key, value)
    gateway = GatewayService(
        config=settings["config"], gateway_id=settings["gateway_id"], token_secret=settings["token_secret"],
        router=_Router(channel, "router"), sync=Remote(channel, "sync", notify=frozenset({"note_ack"})),
        session=Remote(channel, "session"), ids=MessageIdGenerator(settings["node_id"]),
        peers=_RemotePeers(channel), reuse_port=True, revocations=revocations, **settings["advertised"],
    )
    channel.expose("gateway", _WorkerTarget(gateway, stopped, revocations), GATEWAY_METHODS)
    await gateway.start()
    freeze_startup_heap()
    stalls = watchdog_from_env()  # opt-in: log where the loop was whenever it stalls
    channel.notify("core", "worker_ready", (settings["gateway_id"], gateway.port))
    try:
        while not stopped.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stopped.wait(), _STATS_INTERVAL_S)
            channel.notify("core", "worker_stats", (settings["gateway_id"], gateway.connection_count))
    finally:
        if stalls is not None:
            stalls.stop()
        await gateway.stop()
        await channel.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fd", type=int, required=True, help="the inherited socketpair end")
    args = parser.parse_args(argv)
    # Ctrl-C, and a SIGTERM sent to the process group, reach the workers too; the core
    # stops them in order (or its channel closing does), so they ignore both rather than
    # die first and be restarted by a core that is itself stopping.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    tune_interpreter()
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on every supported platform
        asyncio.run(run(args.fd))
    else:
        uvloop.run(run(args.fd))
    return 0


if __name__ == "__main__":
    sys.exit(main())
