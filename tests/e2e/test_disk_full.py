"""A full disk: clean errors, degraded health, backed-off retries, a quiet log (issue 10 item 5).

`flarectl up` runs with the log's ENOSPC fault switch. First only committed offsets fail
(a nearly full disk: appends still fit the segment's last block): the store must back off
rather than spin, and say so a few times, not thousands. Then every write fails: sends
get an error, never `stored`. /healthz says degraded with the reason throughout, and ok
again once space is back; every message acked `stored` is delivered.
"""

from __future__ import annotations

import asyncio

from .flare_process import FlareProcess
from .wsclient import WsClient


def _enospc_lines(flare: FlareProcess) -> int:
    return sum(1 for line in flare.lines if "No space left on device" in line)


async def _health_becomes(flare: FlareProcess, status: str, timeout: float = 15.0) -> dict:
    for _ in range(int(timeout / 0.2)):
        health = await asyncio.to_thread(flare.health)
        if health["status"] == status:
            return health
        await asyncio.sleep(0.2)
    raise AssertionError(f"health never became {status}: {health}\n" + "\n".join(flare.lines[-30:]))


async def test_disk_full_degrades_backs_off_and_recovers(tmp_path):
    switch = tmp_path / "enospc"
    flare = FlareProcess(tmp_path / "flare", env={"FLARE_FAULT_ENOSPC_FILE": str(switch)}).start()
    alice = await WsClient(flare.url, flare.secret, "alice").connect()
    bob = await WsClient(flare.url, flare.secret, "bob").connect()
    try:
        await alice.send("before", to="bob")
        await bob.wait_for(lambda f: f.get("type") == "message" and f["body"] == "before")
        assert (await asyncio.to_thread(flare.health))["status"] == "ok"

        switch.write_text("offsets")
        nearly_full = [await alice.send(f"nearly-{i}", to="bob") for i in range(5)]
        for cmid in nearly_full:  # appends still work: these are stored
            await alice.wait_for(lambda f, c=cmid: f.get("client_msg_id") == c and f.get("level") == "stored")
        health = await _health_becomes(flare, "degraded")
        assert any("No space left on device" in p for p in health["problems"]), health
        await asyncio.sleep(4)  # a retry loop without back-off logged thousands of lines by now

        switch.write_text("all")
        refused = [await alice.send(f"full-{i}", to="bob") for i in range(20)]
        errors = await alice.wait_count(lambda f: f.get("type") == "error", 20)
        assert len(errors) == 20
        await asyncio.sleep(2)
        assert not any(f.get("level") == "stored" and f.get("client_msg_id") in refused for f in alice.frames)
        lines_while_full = _enospc_lines(flare)
        assert 1 <= lines_while_full <= 20, f"{lines_while_full} ENOSPC log lines in ~7 s"

        switch.unlink()
        await alice.send("after", to="bob")
        await _health_becomes(flare, "ok")
        got = await bob.wait_count(lambda f: f.get("type") == "message", 1 + len(nearly_full) + 1, timeout=30)
        bodies = [f["body"] for f in got]
        assert set(bodies) == {"before", "after", *(f"nearly-{i}" for i in range(5))}, bodies
    finally:
        await alice.close()
        await bob.close()
        flare.stop()
