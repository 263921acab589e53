"""Fan-out: frames to every online device of some users, through their gateways.

Shared by the router (messages, acks) and sync (events, read receipts); in the split
deployment each of those processes has its own Fanout over the session client and the
gateway directory, so neither has to call the other to reach a device.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING

from services.backends.messagedb import MessageDB
from services.common.errors import BackendUnavailable, Forbidden
from services.common.metrics import DELIVERY_FAILURES, RETRIES
from services.common.model import Session, c2c_members
from services.common.retry import RetryPolicy, retry_async
from services.session.client import SessionClient

if TYPE_CHECKING:  # the gateway package imports the router's client: keep this one lazy
    from services.gateway.client import GatewayDirectory

__all__ = ["Fanout", "MembershipCache"]


class MembershipCache:
    """Group members from the MessageDB, cached in-process; c2c members come from the id."""

    def __init__(self, db: MessageDB, ttl_s: float = 5.0) -> None:
        self._db = db
        self._ttl = ttl_s
        self._cache: dict[str, tuple[float, list[str]]] = {}

    async def members(self, conversation_id: str) -> list[str]:
        if conversation_id.startswith("c2c:"):
            return list(c2c_members(conversation_id))
        loop = asyncio.get_running_loop()
        hit = self._cache.get(conversation_id)
        if hit is not None and hit[0] > loop.time():
            return hit[1]
        members = [str(m) for m in await self._db.members(conversation_id)]
        self._cache[conversation_id] = (loop.time() + self._ttl, members)
        return members

    async def require_member(self, user_id: str, conversation_id: str) -> list[str]:
        members = await self.members(conversation_id)
        if user_id not in members:
            raise Forbidden(f"{user_id} is not a member of {conversation_id}")
        return members

    def invalidate(self, conversation_id: str) -> None:
        self._cache.pop(conversation_id, None)


class Fanout:
    def __init__(self, *, session: SessionClient, gateways: GatewayDirectory, retry: RetryPolicy,
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

    async def push(self, gateway_id: str, deliveries: list[tuple[str, bytes]]) -> list[str]:
        """Push to one gateway, batch_size deliveries per call, with retries; return the
        connection ids that could not be reached."""
        if len(deliveries) > self.batch_size:
            gone: list[str] = []
            for start in range(0, len(deliveries), self.batch_size):
                gone += await self.push(gateway_id, deliveries[start:start + self.batch_size])
            return gone
        gateway = self._gateways.get(gateway_id)
        if gateway is None:
            DELIVERY_FAILURES.labels("gateway_unknown").inc(len(deliveries))
            return [c for c, _ in deliveries]

        def note_retry(attempt: int, exc: BaseException) -> None:
            RETRIES.labels("gateway_push").inc()

        try:
            async with self._in_flight:
                return await retry_async(
                    self._retry, lambda: gateway.push(deliveries), retry_on=(BackendUnavailable,), on_retry=note_retry,
                )
        except BackendUnavailable:
            # The devices will sync on reconnect; their messages are stored.
            DELIVERY_FAILURES.labels("gateway_unreachable").inc(len(deliveries))
            return [c for c, _ in deliveries]

    async def push_many(self, per_gateway: dict[str, list[tuple[str, bytes]]]) -> list[str]:
        """One push per gateway, concurrently; return every unreachable connection id."""
        if len(per_gateway) == 1:
            (gateway_id, deliveries), = per_gateway.items()
            return await self.push(gateway_id, deliveries)
        results = await asyncio.gather(*(self.push(g, d) for g, d in per_gateway.items()))
        return [c for gone in results for c in gone]

    async def to_users(self, frames_by_user: dict[str, list[bytes]]) -> None:
        """Push frames to every online device of each user (acks, events, receipts)."""
        routes = await self.routes(sorted(frames_by_user))
        per_gateway: dict[str, list[tuple[str, bytes]]] = defaultdict(list)
        for user, frames in frames_by_user.items():
            for session in routes.get(user, []):
                per_gateway[session.gateway_id].extend((session.connection_id, f) for f in frames)
        if per_gateway:
            await self.push_many(per_gateway)
