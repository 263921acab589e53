"""A real deployment for TUI drills: the daemon (embedded SQLite store) serving gRPC, and
instances whose agents push summaries and answer documents like real ones: a gateway, a
store whose consumer can be paused (its lag then grows), and two filters over the real gRPC
stream, one of which refuses more than `max_words` words (NACK), and can be killed."""

from __future__ import annotations

import asyncio
from pathlib import Path

from controlplane.agent import ConfigAgent
from controlplane.api import serve_grpc
from controlplane.daemon import ControlPlane
from services.backends.registry import open_configstore
from services.common.auth import issue_token
from services.common.errors import InvalidInput

SECRET = b"tui-drill-secret"


class Numbers:
    def __init__(self) -> None:
        self.messages = 0.0
        self.lag = 0.0
        self.paused = False

    def summary(self) -> dict:
        self.messages += 20
        if self.paused:
            self.lag += 40  # produced, not consumed
        return {"c": {"in": self.messages}, "g": {"conn": 4}, "lag": {"0": self.lag}, "h": {}}


class Deployment:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.cp = ControlPlane(open_configstore(f"sqlite:///{tmp}/config.db"), SECRET, health_tick_s=0.2)
        self.gateway, self.store = Numbers(), Numbers()
        self.agents: dict[str, ConfigAgent] = {}
        self.address = ""

    def token(self, role: str) -> str:
        return issue_token(SECRET, f"drill-{role}", ttl_s=600, role=role)

    async def start(self) -> Deployment:
        await self.cp.start()
        self.address = f"127.0.0.1:{await serve_grpc(self.cp, '127.0.0.1', 0)}"

        async def accept(document: dict) -> None:
            return None

        async def at_most_two(document: dict) -> None:
            words = document.get("sensitive_words", [])
            if len(words) > 2:
                raise InvalidInput(f"sensitive_words: {len(words)} words exceed this instance's limit of 2")

        service_token = self.token("service")
        self.agents = {
            "gateway/gw-1": ConfigAgent("gateway", "gw-1", "127.0.0.1:8700", {}, self.tmp / "gw", self.cp,
                                        summary=self.gateway.summary, summary_interval_s=0.2),
            "store/store-1": ConfigAgent("store", "store-1", "in-process", {"tiering": accept}, self.tmp / "st",
                                         self.cp, summary=self.store.summary, summary_interval_s=0.2),
            "filter/filter-1": ConfigAgent("filter", "filter-1", "127.0.0.1:9101", {"filter-rules": accept},
                                           self.tmp / "f1", self.address, token=service_token,
                                           summary=lambda: {"c": {"in": 0.0}}, summary_interval_s=0.2),
            "filter/filter-2": ConfigAgent("filter", "filter-2", "127.0.0.1:9102", {"filter-rules": at_most_two},
                                           self.tmp / "f2", self.address, token=service_token,
                                           summary=lambda: {"c": {"in": 0.0}}, summary_interval_s=0.2),
        }
        for agent in self.agents.values():
            await agent.start()
        await asyncio.wait_for(asyncio.gather(*(a.connected.wait() for a in self.agents.values())), 10)
        return self

    async def kill(self, key: str) -> None:
        await self.agents.pop(key).stop()

    async def stop(self) -> None:
        for agent in self.agents.values():
            await agent.stop()
        await self.cp.stop()
