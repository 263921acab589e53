"""Alerts: what fires now, and the log of what fired and cleared, when. Enter goes to the
instance with the reason on top."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Header, Static

from ..format import clock
from ..widgets.alert_table import AlertTable, worst_first
from ..widgets.status_bar import StatusBar
from ..widgets.tables import add_fixed_columns
from .picture_screen import PictureScreen

__all__ = ["AlertsScreen"]


class AlertsScreen(PictureScreen):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back")]
    DEFAULT_CSS = """
    AlertsScreen #active { height: 1fr; }
    AlertsScreen #log { height: 1fr; }
    """

    def __init__(self) -> None:
        super().__init__()
        self._log: list[dict] = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield StatusBar()
        yield Static("firing")
        yield AlertTable(id="active")
        yield Static("log (newest first)")
        yield DataTable(id="log", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        add_fixed_columns(self.query_one("#log", DataTable),
                          [("AT", 8), ("EVENT", 7), ("ALERT", 11), ("INSTANCE", 16), ("REASON", 24)])
        self.picture_ready()

    def on_screen_resume(self) -> None:
        self.app.sub_title = "overview › alerts"

    def draw(self, picture: dict) -> None:
        now = picture.get("at", 0)
        self.query_one("#active", AlertTable).show(worst_first(picture["alerts"]), now)
        log = list(reversed(picture.get("alert_log", [])))[:200]
        if [e.get("log_seq") for e in log] != [e.get("log_seq") for e in self._log]:
            log_table = self.query_one("#log", DataTable)
            log_table.clear()
            for entry in log:
                log_table.add_row(clock(entry.get("at", 0)), entry["event"], entry["alert"], entry["instance"],
                                  entry["reason"])
        self._log = log

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        rows = self.query_one("#active", AlertTable).alerts if event.data_table.id == "active" else self._log
        if 0 <= event.cursor_row < len(rows):
            alert = rows[event.cursor_row]
            self.app.open_instance(alert["instance"], alert=alert)
