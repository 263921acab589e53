"""RedisCache: the Cache port on Redis or Redis Cluster.

`redis://[:password@]host:port[/db]` or `redis+cluster://host:port[,host:port…]`.

Cluster mode: multi-key reads and writes are grouped by hash slot (one MGET/DEL per slot,
pipelines fan out per node), so keys need no hash tags. Pub/sub uses sharded channels
(SPUBLISH/SSUBSCRIBE on the node that owns the channel's slot), so PUBLISH's subscriber
count means the same as on a single server.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import TypeVar
from urllib.parse import unquote, urlsplit

import redis.asyncio as aioredis
from redis import exceptions as redis_errors
from redis.asyncio.cluster import ClusterNode, RedisCluster

from services.common.coalesce import ItemCoalescer
from services.common.errors import BackendError, BackendUnavailable, FlareError, InvalidInput
from services.common.metrics import REDIS_PIPELINE

__all__ = ["RedisCache"]

T = TypeVar("T")

_UNAVAILABLE = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.ClusterDownError,
    redis_errors.TryAgainError,
    redis_errors.BusyLoadingError,
    redis_errors.MasterDownError,
    redis_errors.RedisClusterException,  # no reachable node, slot not covered
    OSError,
)


async def _call(what: str, coro: Awaitable[T]) -> T:
    """Await a redis-py call, translating its exceptions into Flare errors."""
    try:
        return await coro
    except FlareError:
        raise
    except _UNAVAILABLE as exc:
        raise BackendUnavailable(f"{what}: Redis unavailable: {exc}") from exc
    except redis_errors.ResponseError as exc:
        text = str(exc)
        if text.startswith("WRONGTYPE") or "not an integer" in text or "not a valid float" in text:
            raise InvalidInput(f"{what}: {text}") from exc
        raise BackendError(f"{what}: {text}") from exc
    except redis_errors.RedisError as exc:
        raise BackendError(f"{what}: {exc}") from exc


def _ms(ttl: float) -> int:
    if ttl <= 0:
        raise InvalidInput("a TTL must be positive", ttl=ttl)
    return max(1, math.ceil(ttl * 1000))


def _score(value: float) -> str:
    if math.isinf(value):
        return "+inf" if value > 0 else "-inf"
    return repr(float(value))


class RedisCache:
    def __init__(self, *, url: str | None = None, cluster_nodes: Sequence[tuple[str, int]] | None = None,
                 password: str | None = None) -> None:
        if (url is None) == (cluster_nodes is None):
            raise InvalidInput("RedisCache needs a redis:// URL or cluster nodes")
        self._url = url
        self._cluster_nodes = list(cluster_nodes or [])
        self._password = password
        self._redis: aioredis.Redis | RedisCluster | None = None
        # Single-key commands that callers issue concurrently (a store reserving a batch's
        # messages, each in its own task) share one pipeline: one write and one read for
        # the lot instead of a connection checkout and a round trip each. One caller alone
        # still sends at once; two pipelines may be in flight.
        self._commands: ItemCoalescer[tuple[str, tuple, dict], object] = ItemCoalescer(
            self._pipeline, max_batch=256, max_in_flight=2, on_batch=REDIS_PIPELINE.observe)

    @classmethod
    def from_url(cls, url: str) -> RedisCache:
        parts = urlsplit(url)
        if parts.scheme == "redis":
            return cls(url=url)
        if parts.scheme != "redis+cluster":
            raise InvalidInput("RedisCache needs redis:// or redis+cluster://", url=url)
        auth, _, hosts = parts.netloc.rpartition("@")
        nodes = []
        for address in filter(None, hosts.split(",")):
            host, _, port = address.rpartition(":")
            try:
                nodes.append((host or "127.0.0.1", int(port)))
            except ValueError as exc:
                raise InvalidInput(f"bad cluster node {address!r}", url=url) from exc
        if not nodes:
            raise InvalidInput("redis+cluster:// needs at least one host:port", url=url)
        password = unquote(auth.partition(":")[2]) if auth else None
        return cls(cluster_nodes=nodes, password=password or None)

    @property
    def clustered(self) -> bool:
        return bool(self._cluster_nodes)

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        if self._redis is not None:
            return
        if self.clustered:
            client = RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in self._cluster_nodes],
                                  password=self._password, decode_responses=False)
            try:
                await _call("connect to Redis Cluster", client.initialize())
            except BaseException:
                await client.aclose()
                raise
        else:
            client = aioredis.Redis.from_url(self._url, decode_responses=False)
            try:
                await _call("connect to Redis", client.ping())
            except BaseException:
                await client.aclose()
                raise
        self._redis = client

    async def close(self) -> None:
        client, self._redis = self._redis, None
        if client is not None:
            await client.aclose()

    def _r(self):
        if self._redis is None:
            raise BackendUnavailable("the Redis cache is not started or already closed")
        return self._redis

    def _new_pipeline(self):
        """No MULTI/EXEC: a plain pipeline is one round trip; a cluster one splits per node."""
        client = self._r()
        return client.pipeline() if self.clustered else client.pipeline(transaction=False)

    async def _pipeline(self, commands: Sequence[tuple[str, tuple, dict]]) -> list[object]:
        client = self._r()
        if len(commands) == 1:
            name, args, kwargs = commands[0]
            try:
                return [await getattr(client, name)(*args, **kwargs)]
            except redis_errors.ResponseError as exc:  # that command's own error, like a pipeline's
                return [exc]
        pipe = self._new_pipeline()
        for name, args, kwargs in commands:
            getattr(pipe, name)(*args, **kwargs)
        # A command's own error (WRONGTYPE) comes back in its slot and goes to its caller
        # alone; a lost connection raises here, to every caller of the batch.
        return await pipe.execute(raise_on_error=False)

    def _command(self, name: str, *args, **kwargs) -> Awaitable[object]:
        return self._commands((name, args, kwargs))

    # -- plain keys ---------------------------------------------------------------------------
    async def get(self, key: str) -> bytes | None:
        return await _call("GET", self._command("get", key))

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        await _call("SET", self._command("set", key, value, px=_ms(ttl) if ttl is not None else None))

    async def set_nx(self, key: str, value: bytes, *, ttl: float | None = None) -> bool:
        done = await _call("SET NX", self._command("set", key, value, nx=True,
                                                   px=_ms(ttl) if ttl is not None else None))
        return bool(done)

    async def set_nx_many(self, keys: Sequence[str], value: bytes, *, ttl: float | None = None) -> list[bool]:
        if not keys:
            return []
        px = _ms(ttl) if ttl is not None else None
        # One round trip for the batch (a cluster pipeline splits it per node), not one per key.
        pipe = self._new_pipeline()
        for key in keys:
            pipe.set(key, value, nx=True, px=px)
        return [bool(done) for done in await _call("SET NX (pipeline)", pipe.execute())]

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        if not self.clustered:
            return await _call("MGET", self._r().mget(list(keys)))
        # A cluster pipeline of GETs: one round trip per node (it refuses multi-key MGET).
        # Gathering one MGET per hash slot took a connection per slot and ran out of them
        # past a few dozen slots.
        pipe = self._new_pipeline()
        for key in keys:
            pipe.get(key)
        return await _call("GET (pipeline)", pipe.execute())

    async def set_many(self, items: Mapping[str, bytes], *, ttl: float | None = None) -> None:
        if not items:
            return
        px = _ms(ttl) if ttl is not None else None
        # A cluster pipeline splits the commands per node; a plain one is a single round trip.
        pipe = self._new_pipeline()
        for key, value in items.items():
            pipe.set(key, value, px=px)
        await _call("SET (pipeline)", pipe.execute())

    async def delete(self, *keys: str) -> int:
        if not keys:
            return 0
        if not self.clustered:
            return await _call("DEL", self._r().delete(*keys))
        pipe = self._new_pipeline()  # one round trip per node, not a connection per slot
        for key in dict.fromkeys(keys):
            pipe.delete(key)
        return sum(await _call("DEL (pipeline)", pipe.execute()))

    async def incr(self, key: str, amount: int = 1) -> int:
        return await _call("INCRBY", self._command("incrby", key, amount))

    async def expire(self, key: str, ttl: float) -> bool:
        return bool(await _call("PEXPIRE", self._r().pexpire(key, _ms(ttl))))

    async def ttl(self, key: str) -> float | None:
        remaining = await _call("PTTL", self._r().pttl(key))
        return remaining / 1000 if remaining >= 0 else None

    # -- hashes ---------------------------------------------------------------------------------
    async def hset(self, key: str, mapping: Mapping[str, bytes]) -> None:
        if mapping:
            await _call("HSET", self._r().hset(key, mapping=dict(mapping)))

    async def hget(self, key: str, field: str) -> bytes | None:
        return await _call("HGET", self._r().hget(key, field))

    async def hgetall(self, key: str) -> dict[str, bytes]:
        raw = await _call("HGETALL", self._r().hgetall(key))
        return {name.decode(): value for name, value in raw.items()}

    async def hgetall_many(self, keys: Sequence[str]) -> list[dict[str, bytes]]:
        # One pipeline, not one command per key: a group of thousands read concurrently
        # took one pooled connection per key and ran out ("Too many connections").
        if not keys:
            return []
        pipe = self._new_pipeline()
        for key in keys:
            pipe.hgetall(key)
        replies = await _call("HGETALL (pipeline)", pipe.execute())
        return [{name.decode(): value for name, value in raw.items()} for raw in replies]

    async def hdel(self, key: str, *fields: str) -> int:
        if not fields:
            return 0
        return await _call("HDEL", self._r().hdel(key, *fields))

    # -- sorted sets ------------------------------------------------------------------------------
    async def zadd(self, key: str, mapping: Mapping[str, float]) -> int:
        if not mapping:
            return 0
        return await _call("ZADD", self._r().zadd(key, {m: float(s) for m, s in mapping.items()}))

    async def zrangebyscore(self, key: str, min_score: float, max_score: float, *,
                            limit: int | None = None) -> list[tuple[str, float]]:
        page = {"start": 0, "num": limit} if limit is not None else {}
        rows = await _call("ZRANGEBYSCORE", self._r().zrangebyscore(
            key, _score(min_score), _score(max_score), withscores=True, **page))
        return [(member.decode(), float(score)) for member, score in rows]

    async def zrem(self, key: str, *members: str) -> int:
        if not members:
            return 0
        return await _call("ZREM", self._r().zrem(key, *members))

    async def zremrangebyscore(self, key: str, min_score: float, max_score: float) -> int:
        return await _call("ZREMRANGEBYSCORE",
                           self._r().zremrangebyscore(key, _score(min_score), _score(max_score)))

    async def zcard(self, key: str) -> int:
        return await _call("ZCARD", self._r().zcard(key))

    # -- pub/sub ------------------------------------------------------------------------------------
    async def publish(self, channel: str, message: bytes) -> int:
        if self.clustered:
            return await _call("SPUBLISH", self._r().spublish(channel, message))
        return await _call("PUBLISH", self._r().publish(channel, message))

    def subscribe(self, channel: str) -> AsyncIterator[bytes]:
        return self._messages(channel)

    async def _messages(self, channel: str) -> AsyncIterator[bytes]:
        connection, subscribe, kinds = self._subscriber(channel)
        pubsub = connection.pubsub()
        try:
            await _call("SUBSCRIBE", subscribe(pubsub))
            while True:
                message = await _call("pub/sub read", pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0))
                if message is not None and message["type"] in kinds:
                    yield message["data"]
        finally:
            await pubsub.aclose()
            if connection is not self._redis:
                await connection.aclose()

    def _subscriber(self, channel: str) -> tuple[aioredis.Redis, Callable, tuple[str, ...]]:
        client = self._r()
        if not self.clustered:
            return client, lambda pubsub: pubsub.subscribe(channel), ("message",)
        node = client.get_node_from_key(channel)
        connection = aioredis.Redis(host=node.host, port=node.port, password=self._password, decode_responses=False)
        return connection, lambda pubsub: pubsub.ssubscribe(channel), ("smessage",)
