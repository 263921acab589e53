"""A split deployment on the real servers of tests/infra, on fresh names, for one test.

    async with split_on(tmp_path, servers) as split:     # servers: {"etcd": …, "redis": …, …}
        split.deployment.gateway_urls, split.db, split.name, split.topic

Fresh names per deployment: a PostgreSQL database, Kafka topics and consumer group, an etcd
namespace, and a Redis DB number (flushed first) — so deployments never see each other's
data. The e2e `flare` fixture and the split fault/tool tests all start deployments here.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from services.backends.messagedb import MessageDB
from services.backends.registry import open_messagedb
from services.wiring.split import SplitDeployment

__all__ = ["SplitUnderTest", "split_on", "split_config_text", "SERVER_KINDS"]

SERVER_KINDS = ("etcd", "redis", "postgres", "kafka", "s3")
_redis_dbs = itertools.cycle(range(1, 16))  # db 0 is left to whoever else shares the server


def split_config_text(*, data_dir: Path, name: str, etcd: str, redis: str, postgres: str, kafka: str, s3: str,
                      gateways: int = 2, routers: int = 2, stores: int = 2, partitions: int = 4,
                      filters: int = 1) -> str:
    return f"""\
data_dir = "{data_dir}"
[backends]
configstore = "{etcd.rstrip('/')}/{name}"
cache = "{redis}"
messagedb = "{postgres}"
log = "{kafka}"
objectstore = "{s3}"
[store]
topic = "{name}.messages"
consumer_group = "{name}-store"
partitions = {partitions}
[router]
offline_topic = "{name}.offline"
offline_consumer_group = "{name}-notify"
[split]
gateways = {gateways}
routers = {routers}
stores = {stores}
filters = {filters}
lease_ttl_s = 5
"""


@dataclass
class SplitUnderTest:
    deployment: SplitDeployment
    db: MessageDB
    name: str
    database: str
    redis_db: int
    admin_token: str

    @property
    def topic(self) -> str:
        return f"{self.name}.messages"


@contextlib.asynccontextmanager
async def split_on(tmp_path: Path, servers: dict, *, gateways: int = 2, routers: int = 2, stores: int = 2,
                   partitions: int = 4, filters: int = 1) -> AsyncIterator[SplitUnderTest]:
    name = f"split-{uuid.uuid4().hex[:10]}"
    database = name.replace("-", "_")
    postgres_url = await asyncio.to_thread(servers["postgres"].create_database, database)
    redis_db = next(_redis_dbs)
    redis = servers["redis"]
    await asyncio.to_thread(redis.redis_cli, "-n", str(redis_db), "FLUSHDB")
    config_path = tmp_path / "flare.toml"
    config_path.write_text(split_config_text(
        data_dir=tmp_path / "flare", name=name, etcd=servers["etcd"].url, redis=f"{redis.url}/{redis_db}",
        postgres=postgres_url, kafka=servers["kafka"].url, s3=servers["s3"].url_for("flare-split"),
        gateways=gateways, routers=routers, stores=stores, partitions=partitions, filters=filters))
    deployment = SplitDeployment.from_config_file(config_path, log_level=os.environ.get("SPLIT_LOG_LEVEL", "warning"))
    db = open_messagedb(postgres_url)
    try:
        await db.start()
        await db.migrate()  # the deploy's `flarectl migrate up` step: split services refuse a schema behind
        await asyncio.to_thread(deployment.start)
        yield SplitUnderTest(deployment, db, name, database, redis_db,
                             (tmp_path / "flare" / "admin.token").read_text().strip())
    finally:
        with contextlib.suppress(Exception):
            await db.close()
        await asyncio.to_thread(deployment.stop)
        with contextlib.suppress(Exception):
            await asyncio.to_thread(servers["postgres"].psql, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
