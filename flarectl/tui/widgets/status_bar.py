"""One line under the header: live / down (reconnecting) / replay position, and read-only."""

from __future__ import annotations

from textual.widgets import Static

from ..format import clock

__all__ = ["StatusBar"]


class StatusBar(Static):
    DEFAULT_CSS = """
    StatusBar { height: 1; background: $panel; padding: 0 1; }
    StatusBar.down { background: $error; color: $text; }
    """

    def show(self, app) -> None:
        picture = app.picture or {}
        rows = picture.get("rows", {})
        alerts = picture.get("alerts", [])
        mode = " · read-only" if app.readonly else ""
        counts = f"{len(rows)} instances · {len(alerts)} alerts"
        if app.recording is not None:
            state = "paused" if app.paused else "playing"
            text = f"REPLAY {app.replay_index + 1}/{len(app.recording)} {clock(picture.get('at', 0))} UTC {state} · {counts}"
            self.remove_class("down")
        elif app.connected:
            text = f"LIVE {app.address} · {counts} · {clock(picture.get('at', 0))} UTC{mode}"
            self.remove_class("down")
        else:
            why = app.link_error or "connecting"
            text = f"CONTROL PLANE DOWN ({why}) · reconnecting · last picture {clock(picture.get('at', 0))}{mode}"
            self.add_class("down")
        self.update(text)
