"""SVG snapshots of every screen at 80×24, from a deterministic recording (tests/tui/recording.py)
played back paused, so each picture is exactly reproducible. After a deliberate change:
`FLARE_UPDATE_SNAPSHOTS=1 pytest tests/tui/test_tui_snapshots.py`, and look at the SVGs."""

from __future__ import annotations

import pytest

from flarectl.tui.app import FlareTui
from flarectl.tui.messages import ConfigLoaded
from flarectl.tui.screens.config_screen import ConfigScreen
from flarectl.tui.source import Recording

from .recording import make_recording

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Recording:
    return Recording.load(make_recording(tmp_path_factory.mktemp("rec") / "incident.jsonl.gz"))


def _at(recording: Recording, second: int) -> FlareTui:
    app = FlareTui(recording=recording)
    app.paused = True
    app.replay_index = second
    return app


async def _settle(pilot) -> None:
    await pilot.pause()
    await pilot.pause(0.2)  # the replay worker has posted the picture at the paused index


def test_overview_mid_incident(snap_compare, recording):
    assert snap_compare(_at(recording, 17), run_before=_settle)


def test_overview_filtered(snap_compare, recording):
    assert snap_compare(_at(recording, 17), press=["slash", "f", "i", "l", "t", "enter"], run_before=_settle)


def test_instance_from_an_alert(snap_compare, recording):
    # Tab to the alerts table; the worst alert (DOWN router-1) is first; Enter shows its reason
    assert snap_compare(_at(recording, 17), press=["tab", "enter"], run_before=_settle)


def test_alerts_screen_with_the_log(snap_compare, recording):
    assert snap_compare(_at(recording, 25), press=["a"], run_before=_settle)


def test_help(snap_compare, recording):
    assert snap_compare(_at(recording, 3), press=["question_mark"], run_before=_settle)


def test_config_history_and_diff(snap_compare, recording):
    history = [{"kind": "filter-rules", "version": v, "spec": {"sensitive_words": [{"word": w} for w in words]},
                "updated_at": f"2026-12-01T21:00:{v:02d}.000Z", "updated_by": "oncall", "comment": c}
               for v, words, c in ((3, ["alpha", "beta"], "fix"), (2, ["alpha", "beta", "gamma"], ""),
                                   (1, ["alpha"], "first"))]

    async def open_config(pilot) -> None:
        await _settle(pilot)
        screen = ConfigScreen()
        await pilot.app.push_screen(screen)
        screen.kind = "filter-rules"
        screen.on_config_loaded(ConfigLoaded("filter-rules", history))
        await pilot.press("down", "d")  # v2 against the version before it
        await pilot.pause(0.2)

    assert snap_compare(_at(recording, 3), run_before=open_config)
