"""The monolith shape: the daemon in-process on the embedded SQLite ConfigStore, a FilterService
agent attached through the in-process handle (no gRPC), exactly as `flarectl up` wires it."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from controlplane.agent import ConfigAgent, appliers_for
from controlplane.daemon import ControlPlane
from services.backends.registry import open_configstore
from services.common.errors import BackendUnavailable
from services.common.model import Message
from services.filter.service import FilterService

pytestmark = pytest.mark.timeout(60)


def _message(text: str) -> Message:
    return Message(msg_id=1, client_msg_id="1", conversation_id="c2c:a:b", sender_id="a", sender_device="d",
                   content_type="text", body=text, created_at=0)


async def test_monolith_wiring_applies_filter_rules_in_process(tmp_path):
    cp = ControlPlane(open_configstore(f"sqlite:///{tmp_path}/config.db"), b"secret", resync_interval_s=0.5)
    await cp.start()
    service = FilterService()
    agent = ConfigAgent("filter", "monolith", "in-process", appliers_for(service, ["filter-rules"]),
                        tmp_path / "agent", cp)
    await agent.start()
    try:
        result = await cp.apply_manifest({"kind": "filter-rules", "spec": {"sensitive_words": ["forbidden"]}},
                                         actor="test")
        await agent.wait_for_version("filter-rules", result.version, timeout=5)
        assert (await service.check(_message("a forbidden word"))).action == "block"
        for _ in range(100):  # the ACK is recorded just after the applier returns
            [instance] = (await cp.status())["instances"]
            if instance["kinds"][0]["state"] == "SYNCED":
                break
            await asyncio.sleep(0.02)
        assert (instance["service"], instance["health"]) == ("filter", "UP")
        assert [(k["kind"], k["state"]) for k in instance["kinds"]] == [("filter-rules", "SYNCED")]
    finally:
        await agent.stop()
        await cp.stop()

    # Restarted with the control plane unavailable: the cached known-good applies at start.
    fresh = FilterService()

    class Unreachable:
        @contextlib.asynccontextmanager
        async def connect(self, hello):
            raise BackendUnavailable("control plane down")
            yield

    offline = ConfigAgent("filter", "monolith", "in-process", appliers_for(fresh, ["filter-rules"]),
                          tmp_path / "agent", Unreachable())
    await offline.start()
    try:
        assert offline.current["filter-rules"].version == result.version
        assert (await fresh.check(_message("forbidden"))).action == "block"
    finally:
        await offline.stop()
