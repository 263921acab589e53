"""Fan-out: frames to every online device of some users, through their gateways.

Shared by delivery (messages, DELIVERED acks) and sync (events, read receipts); in the
split deployment each of those processes has its own Fanout over the session service's
routes and the gateway directory, so neither has to call the other to reach a device.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from typing import Protocol

from services.common.errors import BackendUnavailable
from services.common.metrics import DELIVERY_FAILURES, RETRIES
from services.common.model import Session
from services.common.retry import RetryPolicy, retry_async

from .seam import GatewayDirectory, Push

__all__ = ["Fanout", "Routes"]


class Routes(Protocol):
    """The one call fan-out needs of the session service (SessionClient.routes)."""

    async def routes(self, user_ids: Sequence[str]) -> dict[str, list[Session]]: ...


class Fanout:
    def __init__(self, *, session: Routes, gateways: GatewayDirectory, retry: RetryPolicy,
                 batch_size: int = 1000, max_in_flight: int = 32) -> None:
        self.session = session
        self._gateways = gateways
        self._retry = retry
        self.configure(batch_size=batch_size, max_in_flight=max_in_flight)

    def configure(self, *, batch_size: int, max_in_flight: int) -> None:
        """The `routing` document's batch_size and conn_pool_size."""
        self.batch_size = batch_size
        self.max_in_flight = max_in_flight
        self._in_flight = asyncio.Semaphore(max_in_flight)

    async def routes(self, user_ids: Sequence[str]) -> dict[str, list[Session]]:
        return await self.session.routes(list(user_ids))

    async def push(self, gateway_id: str, pushes: list[Push]) -> list[str]:
        """Push to one gateway, batch_size pushes per call, with retries; return the
        connection ids that could not be reached."""
        if len(pushes) > self.batch_size:
            gone: list[str] = []
            for start in range(0, len(pushes), self.batch_size):
                gone += await self.push(gateway_id, pushes[start:start + self.batch_size])
            return gone
        gateway = self._gateways.get(gateway_id)
        if gateway is None:
            DELIVERY_FAILURES.labels("gateway_unknown").inc(len(pushes))
            return [p.connection_id for p in pushes]

        def note_retry(attempt: int, exc: BaseException) -> None:
            RETRIES.labels("gateway_push").inc()

        try:
            async with self._in_flight:
                return await retry_async(
                    self._retry, lambda: gateway.push(pushes), retry_on=(BackendUnavailable,), on_retry=note_retry,
                )
        except BackendUnavailable:
            # The devices will sync on reconnect; their messages are stored.
            DELIVERY_FAILURES.labels("gateway_unreachable").inc(len(pushes))
            return [p.connection_id for p in pushes]

    async def push_many(self, per_gateway: dict[str, list[Push]]) -> list[str]:
        """One push per gateway, concurrently; return every unreachable connection id."""
        if len(per_gateway) == 1:
            (gateway_id, pushes), = per_gateway.items()
            return await self.push(gateway_id, pushes)
        results = await asyncio.gather(*(self.push(g, p) for g, p in per_gateway.items()))
        return [c for gone in results for c in gone]

    async def to_users(self, frames_by_user: dict[str, list[bytes]]) -> None:
        """Push frames that are not messages (acks, events, receipts) to every online
        device of each user; they carry seq 0, so the gateway never de-duplicates them."""
        routes = await self.routes(sorted(frames_by_user))
        per_gateway: dict[str, list[Push]] = defaultdict(list)
        for user, frames in frames_by_user.items():
            for session in routes.get(user, []):
                per_gateway[session.gateway_id].extend(Push(session.connection_id, "", 0, f) for f in frames)
        if per_gateway:
            await self.push_many(per_gateway)

    async def to_devices(self, frames_by_device: dict[tuple[str, str], list[bytes]]) -> None:
        """Like to_users, but only to the named (user, device) pairs: a device that is not
        online gets nothing (DELIVERED and read acks are best effort)."""
        routes = await self.routes(sorted({user for user, _ in frames_by_device}))
        per_gateway: dict[str, list[Push]] = defaultdict(list)
        for (user, device), frames in frames_by_device.items():
            for session in routes.get(user, []):
                if session.device_id == device:
                    per_gateway[session.gateway_id].extend(Push(session.connection_id, "", 0, f) for f in frames)
        if per_gateway:
            await self.push_many(per_gateway)
