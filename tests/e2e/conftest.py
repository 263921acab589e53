"""The deployment under test, parametrized by shape: the monolith, the monolith with its
gateway in two worker processes (`workers`: what `flarectl up --gateway-workers 2` runs, the
channel between the processes in the path of every frame), and the split deployment.

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
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from services.common.config import load_config
from services.wiring.monolith import Monolith

from .wsclient import WsClient

def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "monolith_only: pokes the monolith's in-process objects; not run split")


@dataclass
class Deployment:
    shape: str
    gateway_urls: list[str]
    secret: bytes
    monolith: Monolith | None = None
    split: object | None = None  # services.wiring.split.SplitDeployment
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

    async def forget_cache_key(self, key: str) -> None:
        """The cache loses one key, as an expiry or a cache restart would."""
        if self.monolith is not None:
            await self.monolith.cache.delete(key)
            return
        from services.backends.registry import open_cache

        cache = open_cache(self.split.config.backends.cache)
        await cache.start()
        try:
            assert await cache.delete(key) == 1, f"{key} was not in the cache"
        finally:
            await cache.close()

    async def count_messages(self, conversation_id: str | None = None) -> int:
        db = self.monolith.db if self.monolith is not None else self.db
        return await db.count_messages(conversation_id)


@pytest.fixture(params=["monolith", "workers", pytest.param("split", marks=pytest.mark.servers)])
async def flare(request, tmp_path) -> AsyncIterator[Deployment]:
    if request.param != "monolith" and request.node.get_closest_marker("monolith_only"):
        pytest.skip("monolith only: the test reaches into the monolith's in-process objects")
    if request.param == "split":
        async for deployment in _split(request, tmp_path):
            yield deployment
        return
    cfg = load_config(environ={}, data_dir=tmp_path / "flare")
    cfg.gateway.port = 0
    cfg.admin.port = 0
    cfg.controlplane.port = 0
    cfg.gateway.workers = 2 if request.param == "workers" else 0
    monolith = Monolith(cfg)
    await monolith.start()
    deployment = Deployment(request.param, [monolith.gateway_url], monolith.token_secret, monolith)
    try:
        yield deployment
    finally:
        for c in deployment.clients:
            await c.close()
        await monolith.stop()


async def _split(request, tmp_path: Path) -> AsyncIterator[Deployment]:
    from tests.integration.split_harness import SERVER_KINDS, split_on

    servers = {kind: request.getfixturevalue(f"{kind}_server") for kind in SERVER_KINDS}
    async with split_on(tmp_path, servers) as split:
        deployment = Deployment("split", split.deployment.gateway_urls, split.deployment.secret,
                                split=split.deployment, db=split.db, admin_token=split.admin_token)
        try:
            yield deployment
        finally:
            for c in deployment.clients:
                await c.close()
