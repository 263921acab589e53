"""The session service: who is online on which device, behind which gateway.

Layout in the Cache (readable with redis-cli):

- `route:{user_id}`  hash, field device_id -> JSON Session. TTL `route_ttl_s`, refreshed
  by logins and heartbeats, so a user whose instances all died still fades out.
- `session:active`   sorted set, member `{user_id}:{device_id}`, score last_active (ms):
  the index `expire_idle` walks. Ids never contain ':' (validate_name), so it splits.
- `session:lock:{user_id}:{device_id}`  a short lease serialising the read-modify-write
  of one device's session across processes (the port has no compare-and-set on hash
  fields); an asyncio lock does the same inside the process before the lease is asked.
- channel `session:invalidate`  user ids whose routes changed, so other instances drop
  them from their in-process route cache at once instead of after its TTL.

`routes()` is on the delivery path of every message: one batched read for all users
missing from the in-process cache, which is invalidated by every change made here.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace

from prometheus_client import Counter, Gauge

from services.backends.cache import Cache
from services.common import codec
from services.common.config import SessionConfig
from services.common.documents import load_spec
from services.common.errors import BackendUnavailable, Conflict, InvalidInput, NotFound
from services.common.ids import DeviceId, UserId
from services.common.model import DeviceType, Session, SessionStatus, validate_name
from services.delivery.keys import route_key

from ._local import KeyedLocks, RouteCache
from .types import LoginResult

__all__ = ["SessionService", "REPLACED_CLOSE_CODE", "ACTIVE_KEY", "INVALIDATE_CHANNEL"]

log = logging.getLogger(__name__)

REPLACED_CLOSE_CODE = 4003  # WebSocket close code the gateway sends to a replaced connection
ACTIVE_KEY = "session:active"
INVALIDATE_CHANNEL = "session:invalidate"
_LEASE_TTL_S = 5.0
_EXPIRE_BATCH = 1000

_ONLINE = Gauge("flare_sessions_online", "Device sessions online or away")
_LOGINS = Counter("flare_session_logins_total", "Device logins", ["device_type"])
_REPLACED = Counter("flare_session_replaced_total", "Logins that replaced a live session of the same device")


class SessionService:
    """Satisfies SessionClient (services.session.client) in-process."""

    def __init__(
        self,
        cache: Cache,
        config: SessionConfig | None = None,
        *,
        clock: Callable[[], float] = time.time,
        route_cache_ttl_s: float = 2.0,
        route_cache_size: int = 100_000,
        sweep_interval_s: float | None = None,
    ) -> None:
        self._cache = cache
        self._config = config or SessionConfig()
        self._clock = clock
        self._timeout_ms = int(self._config.session_timeout_s * 1000)
        # Twice the idle timeout: the sweeper normally removes a route first and reports
        # it; the TTL only cleans up after instances that died without sweeping.
        self.route_ttl_s = self._config.session_timeout_s * 2
        self._sweep_interval_s = sweep_interval_s or max(1.0, self._config.session_timeout_s / 4)
        self._locks = KeyedLocks()
        self._route_cache: RouteCache[tuple[Session, ...]] = RouteCache(
            ttl_s=route_cache_ttl_s, max_entries=route_cache_size
        )
        self._instance = secrets.token_hex(8)
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        """Start the idle sweeper and the cross-instance route invalidation listener."""
        if self._tasks:
            return
        listener = self._cache.subscribe(INVALIDATE_CHANNEL)
        self._tasks = [
            asyncio.create_task(self.run(), name="session-expire-idle"),
            asyncio.create_task(self._listen(listener), name="session-invalidate"),
        ]

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def run(self) -> None:
        """Expire idle sessions every sweep interval until cancelled."""
        while True:
            await asyncio.sleep(self._sweep_interval_s)
            try:
                expired = await self.expire_idle()
                if expired:
                    log.info("expired %d idle sessions", len(expired))
            except Exception:  # keep sweeping: one failed pass (cache down) is retried next time
                log.exception("expire_idle failed")

    async def _listen(self, messages: AsyncIterator[bytes]) -> None:
        async for payload in messages:
            instance, _, user_id = payload.decode().partition(" ")
            if instance != self._instance:
                self._route_cache.invalidate(user_id)

    # -- writes ----------------------------------------------------------------------
    async def apply_config(self, kind: str, document: dict) -> int:
        """`routing`: route_cache_ttl is the lifetime of this instance's route cache."""
        if kind != "routing":
            raise InvalidInput(f"the session service does not consume {kind!r} documents")
        routing = load_spec("routing", document)
        self._route_cache.ttl_s = float(routing.route_cache_ttl)
        return 1

    async def login(
        self,
        user_id: UserId,
        device_id: DeviceId,
        *,
        device_type: DeviceType | str,
        connection_id: str,
        gateway_id: str,
    ) -> LoginResult:
        """Open (or take over) the session of one device.

        A live session of the same user+device on another connection is replaced (the
        result names it) or refused with Conflict, per `SessionConfig.second_login`.
        A session already idle past the timeout does not count as live.
        """
        _check_ids(user_id, device_id)
        try:
            device_type = DeviceType(device_type)
        except ValueError as exc:
            raise InvalidInput(f"unknown device_type {device_type!r}", field="device_type") from exc
        if not connection_id or not gateway_id:
            raise InvalidInput("connection_id and gateway_id are required", field="connection_id")
        async with self._device_lock(user_id, device_id):
            now = self._now_ms()
            old = await self._read(user_id, device_id)
            replaced = None
            if old is not None and old.connection_id != connection_id:
                # One idle past the timeout is dead but not swept yet: it never blocks a
                # login, but is still named so its gateway closes it if it lingers.
                live = old.last_active >= now - self._timeout_ms
                if live and self._config.second_login == "reject":
                    raise Conflict(
                        f"device {device_id!r} of {user_id!r} is already logged in",
                        connection_id=old.connection_id,
                        gateway_id=old.gateway_id,
                    )
                replaced = old
            session = Session(user_id, device_id, device_type, connection_id, gateway_id, now)
            await self._write(session)
        await self._invalidate(user_id)
        _LOGINS.labels(device_type=device_type.value).inc()
        if replaced is not None:
            _REPLACED.inc()
        if old is None:
            _ONLINE.inc()
        return LoginResult(session, replaced)

    async def heartbeat(self, user_id: UserId, device_id: DeviceId, *, connection_id: str) -> Session:
        """Refresh last_active (AWAY becomes ONLINE again) and the route TTL.

        NotFound if the device has no session (expired: the client should log in again);
        Conflict if it belongs to another connection now (this one was replaced).
        """
        async with self._device_lock(user_id, device_id):
            session = await self._owned(user_id, device_id, connection_id)
            was_away = session.status is SessionStatus.AWAY
            session.last_active = self._now_ms()
            session.status = SessionStatus.ONLINE
            await self._write(session)
        if was_away:
            await self._invalidate(user_id)
        return session

    async def set_status(
        self,
        user_id: UserId,
        device_id: DeviceId,
        *,
        status: SessionStatus | str,
        connection_id: str | None = None,
    ) -> Session:
        """Switch a device between ONLINE and AWAY (OFFLINE is `logout`).

        With `connection_id`, only if the session still belongs to that connection.
        """
        try:
            status = SessionStatus(status)
        except ValueError as exc:
            raise InvalidInput(f"unknown status {status!r}", field="status") from exc
        if status is SessionStatus.OFFLINE:
            raise InvalidInput("use logout to go offline", field="status")
        async with self._device_lock(user_id, device_id):
            session = await self._owned(user_id, device_id, connection_id)
            if session.status is status:
                return session
            session.status = status
            await self._write(session, touch=False)
        await self._invalidate(user_id)
        return session

    async def logout(self, user_id: UserId, device_id: DeviceId, *, connection_id: str) -> bool:
        """Remove the device's session if `connection_id` still owns it.

        False (and nothing removed) for a stale logout: the gateway of a replaced
        connection reports its close after the new login, and must not undo it.
        """
        async with self._device_lock(user_id, device_id):
            session = await self._read(user_id, device_id)
            if session is None or session.connection_id != connection_id:
                return False
            await self._remove(session)
        await self._invalidate(user_id)
        _ONLINE.dec()
        return True

    async def expire_idle(self, now_ms: int | None = None) -> list[Session]:
        """Remove every session idle longer than session_timeout_s; return them as OFFLINE."""
        cutoff = (self._now_ms() if now_ms is None else now_ms) - self._timeout_ms
        expired: list[Session] = []
        while True:
            # Strictly older than the cutoff; the batch shrinks as members are removed,
            # and entries a heartbeat refreshed meanwhile are skipped below.
            candidates = await self._cache.zrangebyscore(ACTIVE_KEY, 0, cutoff - 1, limit=_EXPIRE_BATCH)
            progressed = False
            for member, _ in candidates:
                user_id, _, device_id = member.partition(":")
                async with self._device_lock(UserId(user_id), DeviceId(device_id)):
                    session = await self._read(UserId(user_id), DeviceId(device_id))
                    if session is None:
                        await self._cache.zrem(ACTIVE_KEY, member)
                        progressed = True
                        continue
                    if session.last_active >= cutoff:
                        continue  # a heartbeat won the race; its zadd moved the score too
                    await self._remove(session)
                    progressed = True
                await self._invalidate(UserId(user_id))
                expired.append(replace(session, status=SessionStatus.OFFLINE))
            if len(candidates) < _EXPIRE_BATCH or not progressed:
                break
        _ONLINE.set(await self._cache.zcard(ACTIVE_KEY))
        return expired

    # -- reads -----------------------------------------------------------------------
    async def routes(self, user_ids: Iterable[UserId]) -> dict[UserId, list[Session]]:
        """The live devices (ONLINE or AWAY) of each user; [] for users with none.

        Served from the in-process cache where possible; all misses are read in one
        batch. The Session objects are shared with the cache: read them, don't mutate.
        """
        result: dict[UserId, list[Session]] = {}
        missing: list[UserId] = []
        for user_id in user_ids:
            if user_id in result:
                continue
            cached = self._route_cache.get(user_id)
            if cached is None:
                missing.append(user_id)
                result[user_id] = []  # placeholder keeps the caller's order
            else:
                result[user_id] = list(cached)
        if not missing:
            return result
        ticket = self._route_cache.ticket()
        hashes = await self._hgetall_many([route_key(u) for u in missing])
        live_after = self._now_ms() - self._timeout_ms
        for user_id, fields in zip(missing, hashes):
            sessions = tuple(
                sorted(
                    (s for s in map(_decode, fields.values()) if s.status is not SessionStatus.OFFLINE),
                    key=lambda s: s.device_id,
                )
            )
            self._route_cache.store(user_id, sessions, ticket)
            # Filtered after caching: the cache holds what the Cache holds, and a device
            # that goes quiet drops out of the answer even before the sweeper removes it.
            result[user_id] = [s for s in sessions if s.last_active >= live_after]
        return result

    async def presence(self, user_ids: Iterable[UserId]) -> dict[UserId, SessionStatus]:
        """ONLINE if any device is online, AWAY if all live devices are away, else OFFLINE."""
        presence: dict[UserId, SessionStatus] = {}
        for user_id, sessions in (await self.routes(user_ids)).items():
            statuses = {s.status for s in sessions}
            if SessionStatus.ONLINE in statuses:
                presence[user_id] = SessionStatus.ONLINE
            elif statuses:
                presence[user_id] = SessionStatus.AWAY
            else:
                presence[user_id] = SessionStatus.OFFLINE
        return presence

    async def session(self, user_id: UserId, device_id: DeviceId) -> Session | None:
        """One device's session straight from the Cache (no in-process caching)."""
        return await self._read(user_id, device_id)

    # -- internals -------------------------------------------------------------------
    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    async def _read(self, user_id: UserId, device_id: DeviceId) -> Session | None:
        raw = await self._cache.hget(route_key(user_id), device_id)
        return None if raw is None else _decode(raw)

    async def _owned(self, user_id: UserId, device_id: DeviceId, connection_id: str | None) -> Session:
        session = await self._read(user_id, device_id)
        if session is None:
            raise NotFound(f"no session for device {device_id!r} of {user_id!r}", user_id=user_id, device_id=device_id)
        if connection_id is not None and session.connection_id != connection_id:
            raise Conflict(
                "the session belongs to another connection (replaced by a newer login)",
                connection_id=session.connection_id,
            )
        return session

    async def _write(self, session: Session, *, touch: bool = True) -> None:
        key = route_key(session.user_id)
        await self._cache.hset(key, {session.device_id: codec.dumps(session.to_dict())})
        await self._cache.expire(key, self.route_ttl_s)
        if touch:
            member = f"{session.user_id}:{session.device_id}"
            await self._cache.zadd(ACTIVE_KEY, {member: float(session.last_active)})

    async def _remove(self, session: Session) -> None:
        await self._cache.hdel(route_key(session.user_id), session.device_id)
        await self._cache.zrem(ACTIVE_KEY, f"{session.user_id}:{session.device_id}")

    async def _invalidate(self, user_id: UserId) -> None:
        self._route_cache.invalidate(user_id)
        try:
            await self._cache.publish(INVALIDATE_CHANNEL, f"{self._instance} {user_id}".encode())
        except BackendUnavailable:
            # Other instances fall back to their cache TTL; the write itself succeeded.
            log.warning("could not publish route invalidation for %s", user_id)

    async def _hgetall_many(self, keys: Sequence[str]) -> list[dict[str, bytes]]:
        # One batch (a Redis pipeline), never one concurrent command per key: a fan-out to a
        # 5000-member group would otherwise want 5000 pooled connections at once.
        return await self._cache.hgetall_many(keys)

    @asynccontextmanager
    async def _device_lock(self, user_id: UserId, device_id: DeviceId) -> AsyncIterator[None]:
        _check_ids(user_id, device_id)
        async with self._locks.hold((user_id, device_id)):
            key = f"session:lock:{user_id}:{device_id}"
            token = f"{self._instance}:{secrets.token_hex(4)}".encode()
            deadline = time.monotonic() + _LEASE_TTL_S * 2
            delay = 0.002
            # Another instance holds the lease only for the few round trips of one
            # update; after two lease lifetimes something is wrong with the cache.
            while not await self._cache.set_nx(key, token, ttl=_LEASE_TTL_S):
                if time.monotonic() > deadline:
                    raise BackendUnavailable(f"could not lock the session of {user_id}:{device_id}")
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.05)
            try:
                yield
            finally:
                if await self._cache.get(key) == token:
                    await self._cache.delete(key)


def _decode(raw: bytes) -> Session:
    return Session.from_dict(codec.loads(raw))  # type: ignore[arg-type]


def _check_ids(user_id: str, device_id: str) -> None:
    try:
        validate_name(user_id, "user_id")
        validate_name(device_id, "device_id")
    except ValueError as exc:
        raise InvalidInput(str(exc), field="user_id" if "user" in str(exc) else "device_id") from exc
