"""The deployment under test, parametrized by shape: the monolith, and the split deployment.

split = every service in its own process (2 gateways, 2 routers, 2 stores, 1 of the rest)
on the real servers of tests/infra. Each test gets a deployment of its own on fresh names
(a PostgreSQL database, Kafka topics and consumer group, an etcd namespace, a Redis DB
number flushed first), so tests never see each other's data; a split start takes ~5 s.
Clients are spread over the gateways by user (first-seen order modulo the gateways), so
1:1 and group deliveries cross gateways.

Tests that poke the in-process objects (`flare.monolith`) are marked `monolith_only`.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from services.common.config import load_config
from services.monolith import Monolith

from .wsclient import WsClient

_redis_dbs = itertools.cycle(range(1, 16))  # db 0 is left to whoever else shares the server


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "monolith_only: pokes the monolith's in-process objects; not run split")


@dataclass
class Deployment:
    shape: str
    gateway_urls: list[str]
    secret: bytes
    monolith: Monolith | None = None
    split: object | None = None  # services.split.SplitDeployment
    clients: list[WsClient] = field(default_factory=list)
    admin_token: str = ""
    db: object | None = None  # the split deployment's MessageDB, opened in the test's loop
    _users: dict[str, int] = field(default_factory=dict)

    async def client(self, user: str, device: str = "phone", *, gateway: int | None = None, **kwargs) -> WsClient:
        if gateway is None:  # spread users over the gateways so deliveries cross them
            gateway = self._users.setdefault(user, len(self._users))
        c = WsClient(self.gateway_urls[gateway % len(self.gateway_urls)], self.secret, user, device, **kwargs)
        await c.connect()
        self.clients.append(c)
        return c

    async def apply_filter_rules(self, document: dict) -> None:
        """Apply through the control plane and wait until every filter instance runs it."""
        manifest = {"kind": "filter-rules", "spec": document}
        if self.monolith is not None:
            result = await self.monolith.controlplane.apply_manifest(manifest)
            for agent in self.monolith.agents:
                if "filter-rules" in agent.kinds:
                    await agent.wait_for_version("filter-rules", result.version)
            return
        from controlplane.client import AdminClient

        async with AdminClient(self.split.controlplane_address, token=self.admin_token) as admin:
            version = (await admin.apply(manifest))["version"]
            expected = len(self.split.instances("filter"))
            for _ in range(300):
                status = await admin.status()
                synced = [i for i in status["instances"] if i["service"] == "filter" and any(
                    k["kind"] == "filter-rules" and k["state"] == "SYNCED" and k["applied_version"] >= version
                    for k in i["kinds"])]
                if len(synced) >= expected:
                    return
                await asyncio.sleep(0.05)
        raise AssertionError(f"filter-rules v{version} never SYNCED on every filter instance: {status}")

    async def count_messages(self, conversation_id: str | None = None) -> int:
        db = self.monolith.db if self.monolith is not None else self.db
        return await db.count_messages(conversation_id)


@pytest.fixture(params=["monolith", pytest.param("split", marks=pytest.mark.servers)])
async def flare(request, tmp_path) -> AsyncIterator[Deployment]:
    if request.param == "split":
        if request.node.get_closest_marker("monolith_only"):
            pytest.skip("monolith only: the test reaches into the monolith's in-process objects")
        async for deployment in _split(request, tmp_path):
            yield deployment
        return
    cfg = load_config(environ={}, data_dir=tmp_path / "flare")
    cfg.gateway.port = 0
    cfg.admin.port = 0
    cfg.controlplane.port = 0
    monolith = Monolith(cfg)
    await monolith.start()
    deployment = Deployment("monolith", [monolith.gateway_url], monolith.token_secret, monolith)
    try:
        yield deployment
    finally:
        for c in deployment.clients:
            await c.close()
        await monolith.stop()


def split_config_text(*, data_dir: Path, name: str, etcd: str, redis: str, postgres: str, kafka: str, minio: str,
                      gateways: int = 2, routers: int = 2, stores: int = 2) -> str:
    """A split config on fresh names (`name`) on the given servers; tests/integration uses it too."""
    return f"""\
data_dir = "{data_dir}"
[backends]
configstore = "{etcd.rstrip('/')}/{name}"
cache = "{redis}"
messagedb = "{postgres}"
log = "{kafka}"
objectstore = "{minio}"
[store]
topic = "{name}.messages"
consumer_group = "{name}-store"
partitions = 4
[router]
offline_topic = "{name}.offline"
[split]
gateways = {gateways}
routers = {routers}
stores = {stores}
lease_ttl_s = 5
"""


async def _split(request, tmp_path: Path) -> AsyncIterator[Deployment]:
    from services.backends.registry import open_messagedb
    from services.split import SplitDeployment

    servers = {kind: request.getfixturevalue(f"{kind}_server") for kind in ("etcd", "redis", "postgres", "kafka",
                                                                              "minio")}
    name = f"e2e-{uuid.uuid4().hex[:10]}"
    database = name.replace("-", "_")
    postgres_url = await asyncio.to_thread(servers["postgres"].create_database, database)
    redis_db = next(_redis_dbs)
    await asyncio.to_thread(servers["redis"].redis_cli, "-n", str(redis_db), "FLUSHDB")
    config_path = tmp_path / "flare.toml"
    config_path.write_text(split_config_text(
        data_dir=tmp_path / "flare", name=name, etcd=servers["etcd"].url, redis=f"{servers['redis'].url}/{redis_db}",
        postgres=postgres_url, kafka=servers["kafka"].url, minio=servers["minio"].url_for("flare-e2e")))
    split = SplitDeployment.from_config_file(config_path, log_level="warning")
    await asyncio.to_thread(split.start)
    db = open_messagedb(postgres_url)
    await db.start()
    deployment = Deployment("split", split.gateway_urls, split.secret, split=split, db=db,
                            admin_token=(tmp_path / "flare" / "admin.token").read_text().strip())
    try:
        yield deployment
    finally:
        for c in deployment.clients:
            await c.close()
        await db.close()
        await asyncio.to_thread(split.stop)
        await asyncio.to_thread(servers["postgres"].psql, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
