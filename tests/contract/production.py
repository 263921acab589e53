"""Production adapters that join the contract suites (ARCHITECTURE §4).

Each list entry is `(id, factory)`: `factory(request)` takes the pytest `request` and
returns an async context manager that yields an *opener* — a zero-argument callable
returning a NEW, not yet started adapter instance bound to the same backing storage
each time it is called (so the suites can close an adapter and reopen it to check that
data and committed offsets survive). The conftest starts and closes what the opener
returns; the context manager owns only the backing storage (servers, buckets,
databases). Real servers come from session-scoped fixtures in tests/infra, reached via
`request.getfixturevalue(...)`. The conftest marks every production entry `servers`.

Tests share one server, so the suites namespace their own topics, keys, buckets'
prefixes and conversation ids with random suffixes.

Example:

    @asynccontextmanager
    async def _kafka(request):
        bootstrap = request.getfixturevalue("kafka_server")
        yield lambda: KafkaLog.from_url(f"kafka://{bootstrap}")

    PRODUCTION_LOG = [("kafka", _kafka)]
"""

from __future__ import annotations

PRODUCTION_LOG: list = []
PRODUCTION_CACHE: list = []
PRODUCTION_MESSAGEDB: list = []
PRODUCTION_OBJECTSTORE: list = []
PRODUCTION_CONFIGSTORE: list = []


# -- Kafka, Redis, PostgreSQL, S3 (servers from tests/infra; S3 is SeaweedFS) -----------------

def _production_adapters():
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def _kafka(request):
        from services.backends.kafka.log import KafkaLog

        server = request.getfixturevalue("kafka_server")
        yield lambda: KafkaLog.from_url(server.url)

    def _redis_cache(fixture: str):
        @asynccontextmanager
        async def _redis(request):
            from services.backends.redis.cache import RedisCache

            server = request.getfixturevalue(fixture)
            yield lambda: RedisCache.from_url(server.url)

        return _redis

    fresh_databases: dict[int, str] = {}

    @asynccontextmanager
    async def _postgres(request):
        from services.backends.messagedb.postgres import PostgresMessageDB

        server = request.getfixturevalue("postgres_server")
        # One database per session (tests namespace their conversations), made fresh so a
        # reused `up` server starts from an empty schema.
        if server.port not in fresh_databases:
            fresh_databases[server.port] = server.create_database("flare_contract")
        url = fresh_databases[server.port]
        yield lambda: PostgresMessageDB.from_url(url)

    @asynccontextmanager
    async def _s3(request):
        from services.backends.s3.objectstore import S3ObjectStore

        server = request.getfixturevalue("s3_server")
        url = server.url_for("flare-contract")
        yield lambda: S3ObjectStore.from_url(url)

    PRODUCTION_LOG.append(("kafka", _kafka))
    PRODUCTION_CACHE.append(("redis", _redis_cache("redis_server")))
    PRODUCTION_CACHE.append(("redis-cluster", _redis_cache("redis_cluster")))
    PRODUCTION_MESSAGEDB.append(("postgres", _postgres))
    PRODUCTION_OBJECTSTORE.append(("s3", _s3))


_production_adapters()


def _etcd_configstore():
    import uuid
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def _etcd(request):
        from services.backends.etcd.configstore import EtcdConfigStore

        server = request.getfixturevalue("etcd_server")
        # A key namespace per test: the suites share one etcd and count keys under prefixes.
        url = f"{server.url}/contract-{uuid.uuid4().hex[:8]}"
        yield lambda: EtcdConfigStore.from_url(url)

    return _etcd


PRODUCTION_CONFIGSTORE.append(("etcd", _etcd_configstore()))
