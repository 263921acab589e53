"""Incident drills against a real Monolith (`flarectl up`'s deployment, embedded backends, its
control plane serving gRPC) and real processes, driven with Pilot at 80×24:

(d) a seq gap is planted: a row deleted from the MessageDB, `flarectl check consistency`
    run as the CLI (a subprocess); the TUI shows SEQ_GAP and Enter names the conversation
    and the missing seq.
(c) an instance is killed: a `python -m services.filter` process joined to the monolith's
    control plane, SIGKILLed; the TUI shows DOWN and Enter gives the reason and last seen.
(b) a store's consumer stops: the monolith's store consumer held at its persist step
    (its own lock, where a hung MessageDB write would hold it) while clients keep sending;
    the lag is the real log's end offsets against the group's commits. Load shedding soon
    answers new sends `busy`, so the lag stays flat and LAG_GROWING fires for a consumer
    that consumed nothing while lag stood.

The monolith's daemon ticks every second and reads its store view every 5 s, so "a few
refreshes" here is up to 12 one-second refreshes."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sqlite3
import sys
import time
from pathlib import Path

import pytest
from textual.widgets import DataTable, Static

from flarectl.tui.app import FlareTui
from flarectl.tui.screens.instance_screen import InstanceScreen
from services.common.auth import AUDIENCE_CONTROLPLANE, issue_token
from services.common.config import load_config
from services.common.model import c2c_conversation_id
from services.wiring.monolith import Monolith
from tests.e2e.wsclient import WsClient

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]
REFRESHES = 12  # one-second refreshes of the monolith's daemon


def text(widget: Static) -> str:
    return str(widget.render())


async def until(pilot, predicate, what: str, *, refreshes: int = REFRESHES) -> float:
    started = time.perf_counter()
    for _ in range(refreshes * 4):
        if predicate():
            return time.perf_counter() - started
        await pilot.pause(0.25)
    raise AssertionError(f"not within {refreshes} refreshes: {what}")


def alert_rows(app) -> list[tuple]:
    table = app.screen.query_one("#alerts", DataTable)
    return [tuple(table.get_row_at(i)) for i in range(table.row_count)]


async def open_alert(pilot, app, wanted) -> InstanceScreen:
    """Focus the alerts table, move to the first row `wanted(row)` holds for, press Enter."""
    await pilot.press("tab")
    index = next(i for i, row in enumerate(alert_rows(app)) if wanted(row))
    for _ in range(index):
        await pilot.press("down")
    await pilot.press("enter")
    await pilot.pause(0.2)
    assert isinstance(app.screen, InstanceScreen)
    return app.screen


def viewer_token(monolith: Monolith) -> str:
    return issue_token(monolith.token_secret, "drill-viewer", ttl_s=600, role="viewer",
                       audience=AUDIENCE_CONTROLPLANE)


@pytest.fixture
async def monolith(tmp_path):
    cfg = load_config(environ={}, data_dir=tmp_path / "flare")
    cfg.gateway.port = cfg.admin.port = cfg.controlplane.port = 0
    m = Monolith(cfg)
    await m.start()
    yield m
    await m.stop()


async def flarectl(*args: str) -> tuple[int, dict | None, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FLARECTL_CONFIG": "/nonexistent", "NO_COLOR": "1"}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "flarectl.main", *args, env=env, cwd=ROOT,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    try:
        data = json.loads(out)
    except json.JSONDecodeError:
        data = None
    return proc.returncode, data, err.decode()


async def test_drill_d_a_planted_seq_gap_shows_as_seq_gap(monolith):
    conv = c2c_conversation_id("alice", "bob")
    alice = WsClient(monolith.gateway_url, monolith.token_secret, "alice", "phone")
    await alice.connect()
    try:
        for i in range(5):
            await alice.send(f"m{i}", conversation_id=conv)
        for _ in range(200):
            if await monolith.db.count_messages(conv) == 5:
                break
            await asyncio.sleep(0.05)
        assert await monolith.db.count_messages(conv) == 5
    finally:
        await alice.close()
    # the damage: seq 3's row is gone from the real MessageDB file
    with sqlite3.connect(monolith.data_dir / "messages.db") as db:
        cursor = db.execute("SELECT * FROM messages WHERE conversation_id = ? AND seq = 3", (conv,))
        columns, lost = [c[0] for c in cursor.description], cursor.fetchone()
        assert db.execute("DELETE FROM messages WHERE conversation_id = ? AND seq = 3", (conv,)).rowcount == 1

    app = FlareTui(address=monolith.controlplane_address, token=viewer_token(monolith))
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.picture and app.picture["rows"], "the instances")
        assert not any(r[0] == "SEQ_GAP" for r in alert_rows(app))  # nothing before the check ran
        code, report, err = await flarectl("check", "consistency", "--data-dir", str(monolith.data_dir),
                                           "-o", "json")
        assert code == 1, err
        assert [(f["kind"], f["ids"]) for f in report["findings"]] == [("seq_gap", {"first": 3, "last": 3})]
        assert not any(s.startswith("report to the control plane") for s in report["skipped"]), report["skipped"]
        await until(pilot, lambda: any(r[0] == "SEQ_GAP" for r in alert_rows(app)), "SEQ_GAP on screen")
        row = next(r for r in alert_rows(app) if r[0] == "SEQ_GAP")
        assert row[1] == "check/consistency" and row[3] == f"{conv} lacks seq 3"
        screen = await open_alert(pilot, app, lambda r: r[0] == "SEQ_GAP")
        assert text(screen.query_one("#reason", Static)).startswith("SEQ_GAP (firing, since ")
        details = text(screen.query_one("#details", Static))
        assert details.startswith(f"conversation {conv}\nmissing seqs 3\nfound by flarectl check consistency at ")

        # the repair: the row back, a clean rerun, and the alert clears
        with sqlite3.connect(monolith.data_dir / "messages.db") as db:
            db.execute(f"INSERT INTO messages ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})", lost)
        code, report, err = await flarectl("check", "consistency", "--data-dir", str(monolith.data_dir),
                                           "-o", "json")
        assert (code, report["findings"]) == (0, []), err
        await until(pilot, lambda: text(screen.query_one("#reason", Static)).startswith("SEQ_GAP (cleared"),
                    "SEQ_GAP cleared")
        assert not any(a["alert"] == "SEQ_GAP" for a in app.picture["alerts"])


async def test_a_check_with_no_report_raises_no_alert(monolith):
    conv = c2c_conversation_id("carol", "dave")
    carol = WsClient(monolith.gateway_url, monolith.token_secret, "carol", "phone")
    await carol.connect()
    try:
        for i in range(3):
            await carol.send(f"m{i}", conversation_id=conv)
        for _ in range(200):
            if await monolith.db.count_messages(conv) == 3:
                break
            await asyncio.sleep(0.05)
    finally:
        await carol.close()
    with sqlite3.connect(monolith.data_dir / "messages.db") as db:
        db.execute("DELETE FROM messages WHERE conversation_id = ? AND seq = 2", (conv,))
    code, report, err = await flarectl("check", "consistency", "--data-dir", str(monolith.data_dir), "--no-report",
                                       "-o", "json")
    assert code == 1 and report["findings"][0]["kind"] == "seq_gap", err
    snapshot = await monolith.controlplane.aggregator.fresh_snapshot()
    assert not [a for a in snapshot["alerts"] if a["alert"] == "SEQ_GAP"]


async def test_drill_c_a_killed_instance_process_shows_down(monolith, tmp_path):
    config = tmp_path / "filter.toml"
    config.write_text(f'data_dir = "{monolith.data_dir}"\n[controlplane]\naddress = "{monolith.controlplane_address}"\n')
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.filter", "--config", str(config), "--instance-id", "filter-x",
        "--log-format", "text", env=env, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert line.startswith(b"ready filter filter-x "), line
        app = FlareTui(address=monolith.controlplane_address, token=viewer_token(monolith))
        async with app.run_test(size=(80, 24)) as pilot:
            key = "filter/filter-x"
            await until(pilot, lambda: app.picture and app.picture["rows"].get(key, {}).get("health") == "UP",
                        "the filter process UP")
            assert not any(r[:2] == ("DOWN", key) for r in alert_rows(app))
            killed_at = time.time()
            proc.send_signal(signal.SIGKILL)  # no goodbye: the stream just drops
            assert await asyncio.wait_for(proc.wait(), 10) == -signal.SIGKILL
            await until(pilot, lambda: any(r[:2] == ("DOWN", key) for r in alert_rows(app)), "DOWN on screen")
            table = app.screen.query_one("#instances", DataTable)
            assert ("filter", "filter-x", "DOWN") in [tuple(table.get_row_at(i))[:3] for i in range(table.row_count)]
            screen = await open_alert(pilot, app, lambda r: r[:2] == ("DOWN", key))
            assert text(screen.query_one("#reason", Static)).endswith("stream closed")
            details = text(screen.query_one("#details", Static))
            assert details.startswith(f"{key}  DOWN  at 127.0.0.1:") and "last seen " in details
            assert app.picture["rows"][key]["last_seen"] <= killed_at + 1.5  # what it last said, not now
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_drill_b_a_paused_store_consumer_shows_lag_growing(monolith):
    app = FlareTui(address=monolith.controlplane_address, token=viewer_token(monolith))
    senders = [WsClient(monolith.gateway_url, monolith.token_secret, f"u{i}", "phone") for i in range(4)]
    for client in senders:
        await client.connect()
    stop = asyncio.Event()

    async def traffic() -> None:  # ~40 messages/s over four conversations (and so partitions)
        n = 0
        while not stop.is_set():
            for i, client in enumerate(senders):
                await client.send(f"m{n}", conversation_id=c2c_conversation_id(f"u{i}", f"v{i}"))
            n += 1
            await asyncio.sleep(0.1)

    key = "store/store-1"
    sending = asyncio.create_task(traffic())
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: app.picture and key in app.picture["rows"], "the store")
            await pilot.pause(2.0)
            assert not any(r[:2] == ("LAG_GROWING", key) for r in alert_rows(app))  # it keeps up
            async with monolith.store._persisting:  # the consumer stops before its next write
                await until(pilot, lambda: any(r[:2] == ("LAG_GROWING", key) for r in alert_rows(app)),
                            "LAG_GROWING on screen", refreshes=20)
                screen = await open_alert(pilot, app, lambda r: r[:2] == ("LAG_GROWING", key))
                reason = text(screen.query_one("#reason", Static))
                # Sends are shed (`busy`) once ~20 wait for delivery, so the lag goes flat
                # rather than up: the alert says the consumer stopped, not that lag rises.
                assert reason.startswith("LAG_GROWING (firing") and " records and " in reason, reason
                assert re.search(r"records and (rising|nothing consumed for \d+s) \(worst partition \d+\)", reason)
                details = text(screen.query_one("#details", Static))
                assert "consumer lag p" in details
                assert re.search(r"\((growing|stalled \d+s)\)$", details.rstrip()), details
                assert sum(app.picture["rows"][key]["lag"].values()) > 0
                assert any(f.get("code") == "busy" for c in senders for f in c.frames), "no send was shed"
    finally:
        stop.set()
        await sending
        for client in senders:
            await client.close()
