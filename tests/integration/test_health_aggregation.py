"""The aggregated picture on a real daemon (embedded SQLite store), agents attached in-process
and one over gRPC, read through the real `Watch` RPC: rows per instance, NACK / DOWN / lag
alerts with their reasons, the change stream, and the viewer role at the edge."""

from __future__ import annotations

import asyncio

import pytest

from controlplane.aggregate import AlertRules, apply_changes
from controlplane.agent import ConfigAgent
from controlplane.api import serve_grpc
from controlplane.client import AdminClient
from controlplane.daemon import ControlPlane
from services.backends.registry import open_configstore
from services.common.auth import issue_token
from services.common.errors import InvalidInput, Unauthorized

pytestmark = pytest.mark.timeout(60)


class Counters:
    """An instance's numbers, moved by the test (what summarize() reads from Prometheus)."""

    def __init__(self) -> None:
        self.messages = 0.0
        self.lag = 0.0

    def summary(self) -> dict:
        return {"c": {"in": self.messages}, "g": {"conn": 3}, "lag": {"0": self.lag}, "h": {}}


async def _until(predicate, *, timeout: float = 10.0, what: str = ""):
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
async def daemon(tmp_path):
    cp = ControlPlane(open_configstore(f"sqlite:///{tmp_path}/config.db"), b"secret", health_tick_s=0.2)
    cp.aggregator.rules = AlertRules(lag_min_records=20, lag_points=4)
    await cp.start()
    port = await serve_grpc(cp, "127.0.0.1", 0)
    yield cp, f"127.0.0.1:{port}"
    await cp.stop()


async def _limited_filter(document: dict) -> None:
    if len(document.get("sensitive_words", [])) > 1:
        raise InvalidInput(f"sensitive_words: {len(document['sensitive_words'])} words exceed this instance's limit of 1")


async def _any_filter(document: dict) -> None:
    return None


async def test_rows_rates_and_alerts_reach_a_watcher_with_their_reasons(daemon, tmp_path):
    cp, address = daemon
    gateway_numbers, store_numbers = Counters(), Counters()
    token = issue_token(b"secret", "oncall", ttl_s=60, role="viewer")
    agents = [
        ConfigAgent("gateway", "gw-7", "127.0.0.1:9000", {}, tmp_path / "gw", cp, summary=gateway_numbers.summary,
                    summary_interval_s=0.1),
        ConfigAgent("store", "store-1", "in-process", {}, tmp_path / "st", cp, summary=store_numbers.summary,
                    summary_interval_s=0.1),
        ConfigAgent("filter", "filter-1", "in-process", {"filter-rules": _any_filter}, tmp_path / "f1", cp),
        # over the real gRPC stream, so summaries and reports share one stream there too
        ConfigAgent("filter", "filter-2", "127.0.0.1:9001", {"filter-rules": _limited_filter}, tmp_path / "f2",
                    address, token=issue_token(b"secret", "filter-2", ttl_s=60, role="service"),
                    summary=lambda: {"c": {"in": 1.0}}, summary_interval_s=0.1),
    ]
    for agent in agents:
        await agent.start()
    picture = None
    try:
        async with AdminClient(address, token=token) as client:
            stream = client.watch()
            picture = apply_changes(None, await anext(stream))

            async def next_until(predicate, what):
                nonlocal picture
                async with asyncio.timeout(10):
                    while not predicate(picture):
                        picture = apply_changes(picture, await anext(stream))
                return picture

            await next_until(lambda p: len(p["rows"]) == 4, "four instances")
            assert sorted(picture["rows"]) == ["filter/filter-1", "filter/filter-2", "gateway/gw-7", "store/store-1"]

            for _ in range(15):  # 100 messages/s at the gateway
                gateway_numbers.messages += 10
                await asyncio.sleep(0.1)
            gateway = (await next_until(lambda p: p["rows"]["gateway/gw-7"]["rates"].get("in", 0) > 0, "a rate"))[
                "rows"]["gateway/gw-7"]
            assert 50 <= gateway["rates"]["in"] <= 150, gateway["rates"]
            assert gateway["connections"] == 3 and gateway["address"] == "127.0.0.1:9000"

            await cp.apply_manifest({"kind": "filter-rules", "spec": {"sensitive_words": ["a", "b"]}})
            await next_until(lambda p: any(a["alert"] == "NACKED" for a in p["alerts"]), "the NACK alert")
            [nack] = [a for a in picture["alerts"] if a["alert"] == "NACKED"]
            assert nack["instance"] == "filter/filter-2" and nack["detail"] == "filter-rules"
            assert nack["reason"] == "v1: sensitive_words: 2 words exceed this instance's limit of 1"
            kinds = {r: row["kinds"][0]["state"] for r, row in picture["rows"].items() if row["kinds"]}
            assert kinds == {"filter/filter-1": "SYNCED", "filter/filter-2": "NACKED"}

            async def paused_consumer() -> None:  # producers go on, nothing is consumed
                while True:
                    store_numbers.lag += 15
                    await asyncio.sleep(0.1)

            producing = asyncio.create_task(paused_consumer())
            try:
                await next_until(lambda p: any(a["alert"] == "LAG_GROWING" for a in p["alerts"]), "lag growing")
            finally:
                producing.cancel()
            [lag] = [a for a in picture["alerts"] if a["alert"] == "LAG_GROWING"]
            assert lag["instance"] == "store/store-1" and "rising" in lag["reason"]

            await agents[0].stop()  # the gateway dies
            await next_until(lambda p: p["rows"]["gateway/gw-7"]["health"] == "DOWN", "gateway DOWN")
            assert any(a["alert"] == "DOWN" and a["instance"] == "gateway/gw-7" for a in picture["alerts"])

            await cp.apply_manifest({"kind": "filter-rules", "spec": {"sensitive_words": ["a"]}})
            await next_until(lambda p: not any(a["alert"] == "NACKED" for a in p["alerts"]), "NACK cleared")
            events = [(e["event"], e["alert"]) for e in picture["alert_log"] if e["alert"] == "NACKED"]
            assert events == [("fired", "NACKED"), ("cleared", "NACKED")]
            await stream.aclose()

        async with AdminClient(address, token=None) as anonymous:
            with pytest.raises(Unauthorized):
                await anonymous.health()
    finally:
        for agent in agents[1:]:
            await agent.stop()
