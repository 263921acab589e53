"""The on-call TUI: `FlareTui(address=…, token=…)` live, or `FlareTui(recording=…)` to replay.

One worker owns the source (the live `Watch` stream with reconnects, or the replay clock)
and posts `PictureUpdated` / `LinkChanged`; the screens only draw what the app holds, so a
slow or dead control plane never blocks a key press. Config reads and the rollback run in
their own workers too.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.command import Hit, Hits, Provider
from textual.css.query import NoMatches

from controlplane.aggregate import apply_changes
from controlplane.client import AdminClient
from controlplane.roles import role_allows
from services.common.errors import FlareError

from .format import role_of
from .messages import ActionDone, ConfigLoaded, LinkChanged, PictureUpdated, ReplayPosition
from .screens.alerts_screen import AlertsScreen
from .screens.config_screen import ConfigScreen
from .screens.confirm_screen import AskScreen
from .screens.help_screen import HelpScreen
from .screens.instance_screen import InstanceScreen
from .screens.overview_screen import OverviewScreen
from .source import Recorder, Recording, live_updates

__all__ = ["FlareTui", "parse_jump"]


def parse_jump(text: str, recording: Recording) -> int | None:
    """`+30s` / `-10s` from the start, or `HH:MM:SS` (UTC) on the recording's day."""
    text = text.strip()
    start = recording.times[0]
    try:
        if text.startswith(("+", "-")):
            seconds = float(text[1:].rstrip("s"))
            return recording.index_at(start + (seconds if text[0] == "+" else -seconds))
        hours, minutes, seconds = (int(part) for part in text.split(":"))
    except ValueError:
        return None
    day = start - start % 86400
    return recording.index_at(day + hours * 3600 + minutes * 60 + seconds)


class _Commands(Provider):
    """`:` — go to a screen or an instance by name."""

    async def search(self, query: str) -> Hits:
        app: FlareTui = self.app  # type: ignore[assignment]
        matcher = self.matcher(query)
        targets: list[tuple[str, object]] = [("overview", app.action_overview), ("alerts", app.action_alerts),
                                             ("config", app.action_config), ("help", app.action_help)]
        for key in sorted((app.picture or {}).get("rows", {})):
            targets.append((f"instance {key}", lambda key=key: app.open_instance(key)))
        for name, callback in targets:
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback)  # type: ignore[arg-type]


class FlareTui(App):
    TITLE = "flare"
    # Tables fill the width: an auto-sized table keeps the width of its first rows
    CSS = """
    DataTable { width: 100%; }
    """
    COMMANDS = {_Commands}
    COMMAND_PALETTE_BINDING = "colon"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS = [Binding("question_mark", "help", "Keys", key_display="?"),
                Binding("a", "alerts", "Alerts"), Binding("c", "config", "Config"),
                Binding("q", "quit", "Quit"),
                Binding("space", "pause", "Pause", show=False), Binding("n", "step", "Step", show=False),
                Binding("j", "jump", "Jump", show=False)]

    def __init__(self, *, address: str = "", token: str | None = None, readonly: bool = False,
                 record: str | Path | None = None, recording: Recording | None = None,
                 interval_s: float = 1.0, replay_speed: float = 1.0) -> None:
        super().__init__()
        self.address = address
        self.token = token
        role = role_of(token)
        # read-only by choice, for a viewer token, and always in a replay (nothing to change)
        self.readonly = readonly or recording is not None or (role is not None and not role_allows(role, "operator"))
        self.recording = recording
        self.recorder = Recorder(record) if record else None
        self.interval_s = interval_s
        self.replay_speed = replay_speed
        self.picture: dict | None = None
        self.connected = False
        self.link_error = ""
        self.paused = False
        self.replay_index = 0
        self.frame_times: list[float] = []  # ms per picture drawn (the bench reads them)

    def on_mount(self) -> None:
        self.push_screen(OverviewScreen())
        if self.recording is not None:
            self.play()
        else:
            self.follow()

    # -- sources (workers) ----------------------------------------------------------------

    @work(exclusive=True, group="source")
    async def follow(self) -> None:
        picture = None
        async for item in live_updates(self.address, self.token, interval_s=self.interval_s):
            if item[0] == "link":
                self.post_message(LinkChanged(item[1], item[2]))
                continue
            update = item[1]
            if self.recorder is not None:
                self.recorder.write(time.time(), update)
            picture = apply_changes(picture, update)
            self.post_message(PictureUpdated(picture))

    @work(exclusive=True, group="source")
    async def play(self) -> None:
        import asyncio

        assert self.recording is not None
        recording = self.recording
        self._show_replay()
        while True:
            if self.paused or self.replay_index >= len(recording) - 1:
                await asyncio.sleep(0.05)
                continue
            gap = recording.times[self.replay_index + 1] - recording.times[self.replay_index]
            await asyncio.sleep(min(max(gap, 0.0), 2.0) / self.replay_speed)
            if not self.paused:
                self.replay_index += 1
                self._show_replay()

    def _show_replay(self) -> None:
        assert self.recording is not None
        picture = self.recording.picture_at(self.replay_index)
        self.post_message(PictureUpdated(picture))
        self.post_message(ReplayPosition(self.replay_index, len(self.recording), picture.get("at", 0), self.paused))

    @work(group="config")
    async def load_history(self, kind: str) -> None:
        try:
            async with AdminClient(self.address, token=self.token) as client:
                history = await client.history(kind)
        except FlareError as exc:
            self.post_message(ConfigLoaded(kind, [], str(exc)))
            return
        self.post_message(ConfigLoaded(kind, history))

    @work(group="config")
    async def rollback(self, kind: str, version: int, spec: dict) -> None:
        # Re-applying the old spec is what an operator may do (Rollback is admin-only); the
        # history records it as a rollback all the same.
        try:
            async with AdminClient(self.address, token=self.token) as client:
                result = await client.apply({"kind": kind, "spec": spec}, comment=f"rollback to v{version} (tui)")
                history = await client.history(kind)
        except FlareError as exc:
            self.post_message(ActionDone(f"rollback of {kind} to v{version} failed: {exc}", ok=False))
            return
        self.post_message(ActionDone(f"{kind} v{result['version']} serves v{version}'s rules"))
        self.post_message(ConfigLoaded(kind, history))

    # -- messages -------------------------------------------------------------------------

    def on_picture_updated(self, message: PictureUpdated) -> None:
        started = time.perf_counter()
        self.picture = message.picture
        if self.recording is None and not self.connected:
            self.connected = True
        self._redraw()
        self.frame_times.append((time.perf_counter() - started) * 1000)
        del self.frame_times[:-10_000]

    def on_link_changed(self, message: LinkChanged) -> None:
        self.connected, self.link_error = message.connected, message.error
        self._redraw()

    def on_replay_position(self, message: ReplayPosition) -> None:
        self._redraw()

    def on_config_loaded(self, message: ConfigLoaded) -> None:
        for screen in self.screen_stack:
            if isinstance(screen, ConfigScreen):
                screen.on_config_loaded(message)

    def on_action_done(self, message: ActionDone) -> None:
        self.notify(message.text, severity="information" if message.ok else "error")

    def _redraw(self) -> None:
        for screen in self._visible_screens():
            refresh = getattr(screen, "refresh_picture", None)
            if refresh is not None:
                try:
                    refresh()
                except NoMatches:
                    pass  # a screen being torn down (quit, pop) has nothing left to draw

    def _visible_screens(self) -> Iterable[object]:
        # the top screen, and the one under a modal (help, confirm) which still shows
        stack = self.screen_stack
        if not stack:
            return []
        top = stack[-1]
        return [stack[-2], top] if len(stack) > 1 and top.is_modal else [top]

    # -- navigation -----------------------------------------------------------------------

    def open_instance(self, instance: str, *, alert: dict | None = None) -> None:
        self.push_screen(InstanceScreen(instance, alert=alert))

    def _go(self, screen_type, make) -> None:
        while len(self.screen_stack) > 2 and not isinstance(self.screen, screen_type):
            self.pop_screen()
        if not isinstance(self.screen, screen_type):
            self.push_screen(make())

    def action_overview(self) -> None:
        while len(self.screen_stack) > 2:
            self.pop_screen()

    def action_alerts(self) -> None:
        self._go(AlertsScreen, AlertsScreen)

    def action_config(self) -> None:
        if self.recording is not None:
            self.notify("config is not part of a recording", severity="warning")
            return
        self._go(ConfigScreen, ConfigScreen)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_pause(self) -> None:
        if self.recording is not None:
            self.paused = not self.paused
            self._show_replay()

    def action_step(self) -> None:
        if self.recording is not None:
            self.paused = True
            self.replay_index = min(self.replay_index + 1, len(self.recording) - 1)
            self._show_replay()

    def action_jump(self) -> None:
        if self.recording is None:
            return

        def answered(text: str | None) -> None:
            if not text:
                return
            index = parse_jump(text, self.recording)  # type: ignore[arg-type]
            if index is None:
                self.notify(f"not a time: {text!r} (HH:MM:SS or +30s)", severity="error")
                return
            self.replay_index = index
            self._show_replay()

        self.push_screen(AskScreen("jump to (HH:MM:SS UTC, or +30s from the start):"), answered)

    async def action_quit(self) -> None:
        if self.recorder is not None:
            self.recorder.close()
            self.recorder = None
        self.exit()
