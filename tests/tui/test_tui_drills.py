"""Incident drills: the TUI against a running deployment (the real daemon serving gRPC, agents
pushing summaries and answering documents; tests/tui/deployment.py), driven with Pilot at
80×24. Each drill asserts the alert shows within a few refreshes and that Enter on it leads
to the reason. Then the config screen's rollback (confirmation; refused read-only), the
keys, a control plane that goes away and comes back, and --record / --replay."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest
from textual.widgets import DataTable, Input, Static

from controlplane.api import serve_grpc
from controlplane.daemon import ControlPlane
from flarectl.tui.app import FlareTui
from flarectl.tui.screens.config_screen import ConfigScreen
from flarectl.tui.screens.help_screen import HelpScreen
from flarectl.tui.screens.instance_screen import InstanceScreen
from flarectl.tui.source import Recording
from services.backends.registry import open_configstore

from .deployment import SECRET, Deployment

pytestmark = pytest.mark.timeout(120)

REFRESHES = 25  # "a few refreshes": the daemon ticks every 0.2 s here, so about 5 s at most


@pytest.fixture
async def deployment(tmp_path):
    d = await Deployment(tmp_path).start()
    yield d
    await d.stop()


def text(widget: Static) -> str:
    return str(widget.render())


async def until(pilot, predicate, what: str, *, refreshes: int = REFRESHES, tick: float = 0.2) -> float:
    started = time.perf_counter()
    for _ in range(refreshes * 2):
        if predicate():
            return time.perf_counter() - started
        await pilot.pause(tick / 2)
    raise AssertionError(f"not within {refreshes} refreshes: {what}")


def alert_rows(app) -> list[tuple]:
    table = app.screen.query_one("#alerts", DataTable)
    return [tuple(table.get_row_at(i)) for i in range(table.row_count)]


async def open_first_alert(pilot) -> InstanceScreen:
    await pilot.press("tab")  # from the instances table to the alerts table
    await pilot.press("enter")
    await pilot.pause(0.2)
    screen = pilot.app.screen
    assert isinstance(screen, InstanceScreen), type(screen)
    return screen


async def test_drill_a_nacked_filter_document(deployment):
    app = FlareTui(address=deployment.address, token=deployment.token("operator"))
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.picture and len(app.picture["rows"]) == 4, "four instances")
        started = time.perf_counter()
        await deployment.cp.apply_manifest({"kind": "filter-rules", "spec": {"sensitive_words": ["a", "b", "c"]}})
        await until(pilot, lambda: any(r[0] == "NACKED" for r in alert_rows(app)), "the NACKED alert on screen")
        print(f"NACK -> alert on screen: {(time.perf_counter() - started) * 1000:.0f} ms")
        assert alert_rows(app)[0][:2] == ("NACKED", "filter/filter-2")
        screen = await open_first_alert(pilot)
        assert text(screen.query_one("#reason", Static)).startswith(
            "NACKED (firing, since ")
        assert "v1: sensitive_words: 3 words exceed this instance's limit of 2" in text(screen.query_one("#reason"))
        kinds = screen.query_one("#kinds", DataTable)
        assert tuple(kinds.get_row_at(0))[:2] == ("filter-rules", "NACKED")
        assert app.sub_title == "overview › filter/filter-2"
        await pilot.press("escape")
        assert app.sub_title == "overview"


async def test_drill_b_a_stores_consumer_lag_grows(deployment):
    app = FlareTui(address=deployment.address, token=deployment.token("viewer"))
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.picture and len(app.picture["rows"]) == 4, "four instances")
        deployment.store.paused = True
        await until(pilot, lambda: any(r[0] == "LAG_GROWING" for r in alert_rows(app)), "LAG_GROWING on screen")
        screen = await open_first_alert(pilot)
        reason = text(screen.query_one("#reason", Static))
        assert reason.startswith("LAG_GROWING (firing") and "records and rising (worst partition 0)" in reason
        assert "consumer lag p0=" in text(screen.query_one("#details", Static))


async def test_drill_c_an_instance_is_killed(deployment):
    app = FlareTui(address=deployment.address, token=deployment.token("viewer"))
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.picture and len(app.picture["rows"]) == 4, "four instances")
        await deployment.kill("filter/filter-1")
        await until(pilot, lambda: any(r[:2] == ("DOWN", "filter/filter-1") for r in alert_rows(app)), "DOWN")
        table = app.screen.query_one("#instances", DataTable)
        rows = [tuple(table.get_row_at(i)) for i in range(table.row_count)]
        assert ("filter", "filter-1", "DOWN") in [r[:3] for r in rows]
        screen = await open_first_alert(pilot)
        assert text(screen.query_one("#reason", Static)).endswith("stream closed")


async def test_config_rollback_asks_first_and_is_refused_read_only(deployment):
    cp = deployment.cp
    await cp.apply_manifest({"kind": "filter-rules", "spec": {"sensitive_words": ["alpha"]}})
    await cp.apply_manifest({"kind": "filter-rules", "spec": {"sensitive_words": ["alpha", "beta"]}})
    for token, readonly in ((deployment.token("viewer"), False), (deployment.token("operator"), True)):
        app = FlareTui(address=deployment.address, token=token, readonly=readonly)
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: app.picture is not None, "a picture")
            await pilot.press("c")
            assert isinstance(app.screen, ConfigScreen)
            await pilot.press("enter")  # the first kind: filter-rules
            await until(pilot, lambda: len(app.screen.history) == 2, "history loaded")
            await pilot.press("down", "r")  # v1, roll back
            await pilot.pause(0.2)
            assert isinstance(app.screen, ConfigScreen)  # no confirmation offered
        assert cp.desired.served["filter-rules"].version == 2
    app = FlareTui(address=deployment.address, token=deployment.token("operator"))
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.picture is not None, "a picture")
        await pilot.press("c", "enter")
        await until(pilot, lambda: len(app.screen.history) == 2, "history loaded")
        await pilot.press("d")  # v2 (the newest, selected) against the one before
        diff = text(app.screen.query_one("#diff", Static))
        assert "+- word: beta" in diff and diff.startswith("--- v1\n+++ v2")
        await pilot.press("down", "r")
        await pilot.pause(0.1)
        await pilot.press("n")  # declined: nothing changes
        await pilot.pause(0.2)
        assert cp.desired.served["filter-rules"].version == 2
        await pilot.press("r")
        await pilot.pause(0.1)
        await pilot.press("y")
        await until(pilot, lambda: cp.desired.served["filter-rules"].version == 3, "the rollback applied")
        assert cp.desired.served["filter-rules"].spec["sensitive_words"] == [{"word": "alpha"}]
        assert cp.desired.served["filter-rules"].comment == "rollback to v1 (tui)"
        await until(pilot, lambda: len(app.screen.history) == 3, "history reloaded")


async def test_keys_help_palette_filter_and_escape(deployment):
    app = FlareTui(address=deployment.address, token=deployment.token("viewer"))
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.picture and len(app.picture["rows"]) == 4, "four instances")
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.press("slash", "g", "a", "t", "e")
        await pilot.pause(0.2)
        table = app.screen.query_one("#instances", DataTable)
        assert [tuple(table.get_row_at(i))[1] for i in range(table.row_count)] == ["gw-1"]
        await pilot.press("escape")
        await pilot.pause(0.1)
        assert table.row_count == 4 and app.screen.query_one("#filter", Input).value == ""
        await pilot.press("colon")
        await pilot.pause(0.2)
        from textual.command import CommandPalette

        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"store-1")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert isinstance(app.screen, InstanceScreen) and app.screen.instance == "store/store-1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_a_down_control_plane_is_shown_and_reconnected(tmp_path):
    port = _free_port()
    from services.common.auth import issue_token

    app = FlareTui(address=f"127.0.0.1:{port}", token=issue_token(SECRET, "t", ttl_s=60, role="viewer"))
    async with app.run_test(size=(80, 24)) as pilot:
        status = app.screen.query_one("#status", Static)
        await until(pilot, lambda: text(status).startswith("CONTROL PLANE DOWN"), "DOWN shown")
        await pilot.press("question_mark", "escape")  # keys still answer while the link is down
        cp = ControlPlane(open_configstore(f"sqlite:///{tmp_path}/config.db"), SECRET, health_tick_s=0.2)
        await cp.start()
        try:
            await serve_grpc(cp, "127.0.0.1", port)
            await until(pilot, lambda: text(status).startswith("LIVE"), "reconnected", refreshes=50)
        finally:
            await cp.stop()
        await until(pilot, lambda: text(status).startswith("CONTROL PLANE DOWN"), "DOWN again", refreshes=50)


async def test_record_then_replay_with_pause_step_and_jump(deployment, tmp_path):
    path = tmp_path / "incident.jsonl.gz"
    app = FlareTui(address=deployment.address, token=deployment.token("viewer"), record=path)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.picture and len(app.picture["rows"]) == 4, "four instances")
        await deployment.kill("gateway/gw-1")
        await until(pilot, lambda: any(a["alert"] == "DOWN" for a in app.picture["alerts"]), "DOWN")
        await pilot.pause(0.5)
        await pilot.press("q")
    recording = Recording.load(path)
    assert len(recording) >= 2  # the snapshot, then changes (at most one a second)
    assert recording.entries[0][1]["type"] == "snapshot"
    last = recording.picture_at(len(recording) - 1)
    assert any(a["alert"] == "DOWN" and a["instance"] == "gateway/gw-1" for a in last["alerts"])
    first = recording.picture_at(0)
    assert not any(a["alert"] == "DOWN" for a in first["alerts"])

    replay = FlareTui(recording=recording, replay_speed=50)
    async with replay.run_test(size=(80, 24)) as pilot:
        await pilot.press("space")  # pause
        at = replay.replay_index
        await pilot.pause(0.3)
        assert replay.replay_index == at and replay.paused
        await pilot.press("n")
        assert replay.replay_index == min(at + 1, len(recording) - 1)
        await pilot.press("j")
        await pilot.press(*"+0s", "enter")
        await pilot.pause(0.2)
        assert replay.replay_index == 0
        assert replay.readonly
        await pilot.press("c")  # config is not part of a recording
        assert not isinstance(replay.screen, ConfigScreen)
