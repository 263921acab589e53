"""The deployment under test, parametrized by shape (monolith now; split joins later)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from services.common.config import load_config
from services.monolith import Monolith

from .wsclient import WsClient


@dataclass
class Deployment:
    shape: str
    gateway_urls: list[str]
    secret: bytes
    monolith: Monolith | None = None
    clients: list[WsClient] = field(default_factory=list)

    async def client(self, user: str, device: str = "phone", *, gateway: int = 0, **kwargs) -> WsClient:
        c = WsClient(self.gateway_urls[gateway % len(self.gateway_urls)], self.secret, user, device, **kwargs)
        await c.connect()
        self.clients.append(c)
        return c

    async def apply_filter_rules(self, document: dict) -> None:
        """Apply through the control plane and wait until every filter agent ACKed it."""
        assert self.monolith is not None
        result = await self.monolith.controlplane.apply_manifest({"kind": "filter-rules", "spec": document})
        for agent in self.monolith.agents:
            for _ in range(200):
                current = agent.current.get("filter-rules")
                if current is not None and current.version >= result.version:
                    break
                await asyncio.sleep(0.02)
            else:
                raise AssertionError(f"filter-rules v{result.version} never reached {agent.instance_id}")

    async def count_messages(self, conversation_id: str | None = None) -> int:
        assert self.monolith is not None
        return await self.monolith.db.count_messages(conversation_id)


@pytest.fixture(params=["monolith"])
async def flare(request, tmp_path) -> AsyncIterator[Deployment]:
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
