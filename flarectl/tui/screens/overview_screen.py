"""Overview: every instance of every service (health, rates, p99, load, config sync), the
selected row's sparklines, and the alerts, worst first. Enter opens an instance or, on an
alert, the instance it is about with its reason; `/` filters the instances."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import DataTable, Footer, Header, Input, Sparkline, Static

from flarectl.commands.status import headline_rate, kind_cell, load_cell, p99_ms, short_kind

from ..format import row_matches
from ..widgets.alert_table import AlertTable, worst_first
from ..widgets.status_bar import StatusBar
from ..widgets.tables import add_fixed_columns
from .picture_screen import PictureScreen

__all__ = ["OverviewScreen", "instance_cells"]

INSTANCE_COLUMNS = ("SERVICE", "INSTANCE", "HEALTH", "MSG/s", "P99ms", "LOAD", "CONFIG")
INSTANCE_WIDTHS = (7, 11, 6, 6, 5, 8, 22)


def instance_cells(row: dict) -> tuple[str, ...]:
    config = ", ".join(f"{short_kind(k['kind'])} {kind_cell(k)}" for k in row.get("kinds", [])) or "-"
    return (row["service"], row["instance_id"], row["health"], headline_rate(row), p99_ms(row), load_cell(row),
            config)


class OverviewScreen(PictureScreen):
    BINDINGS = [Binding("slash", "filter", "Filter", key_display="/"),
                Binding("escape", "clear_filter", "Back", show=False),
                Binding("enter", "open", "Open", show=False)]

    DEFAULT_CSS = """
    OverviewScreen #instances { height: 1fr; }
    OverviewScreen #sparks { height: 2; }
    OverviewScreen #sparks Sparkline { width: 1fr; height: 1; }
    OverviewScreen #sparks Static { width: 8; }
    OverviewScreen #alerts { height: 7; }
    OverviewScreen #filter { display: none; }
    OverviewScreen #filter.shown { display: block; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.filter_text = ""
        self._shown: list[str] = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield StatusBar(id="status")
        yield DataTable(id="instances", cursor_type="row", zebra_stripes=False)
        with Horizontal(id="sparks"):
            yield Static("msg/s", id="spark-label")
            yield Sparkline([], id="spark-in")
            yield Static(" p99 ms", id="spark-p99-label")
            yield Sparkline([], id="spark-p99")
        yield AlertTable(id="alerts")
        yield Input(placeholder="filter instances (service, id, health, kind, state) — Esc clears", id="filter")
        yield Footer()

    def on_mount(self) -> None:
        add_fixed_columns(self.query_one("#instances", DataTable), list(zip(INSTANCE_COLUMNS, INSTANCE_WIDTHS)))
        self.picture_ready()

    def on_screen_resume(self) -> None:
        self.app.sub_title = "overview"
        self.refresh_picture()

    # -- drawing --------------------------------------------------------------------------

    def draw(self, picture: dict) -> None:
        rows = [row for key, row in sorted(picture["rows"].items()) if row_matches(row, self.filter_text)]
        table = self.query_one("#instances", DataTable)
        keys = [row["id"] for row in rows]
        cells = [instance_cells(row) for row in rows]
        if keys == self._shown:
            updates = [(position, column, new)
                       for position, (row, new_cells) in enumerate(zip(rows, cells))
                       for column, (old, new) in enumerate(zip(table.get_row(row["id"]), new_cells)) if old != new]
            # cell by cell even when every row moved: measured cheaper than a rebuild (bench/tui_bench.py)
            for position, column, value in updates:
                table.update_cell_at((position, column), value)
        else:  # membership changed (or the filter): rebuild, keep the cursor on the same instance
            self._rebuild(table, rows, cells, keys)
        self._draw_sparks(picture)
        alerts_table = self.query_one("#alerts", AlertTable)
        now = picture.get("at", 0)
        if not alerts_table.show(worst_first(picture["alerts"]), now):
            alerts_table.refresh_since(now)

    def _rebuild(self, table: DataTable, rows: list[dict], cells: list[tuple[str, ...]], keys: list[str]) -> None:
        selected = self.selected_instance()
        scroll_y = table.scroll_y
        table.clear()
        for row, row_cells in zip(rows, cells):
            table.add_row(*row_cells, key=row["id"])
        self._shown = keys
        if selected in keys:
            table.move_cursor(row=keys.index(selected), animate=False, scroll=False)
        table.scroll_to(y=scroll_y, animate=False)

    def _draw_sparks(self, picture: dict) -> None:
        key = self.selected_instance()
        row = picture["rows"].get(key) if key else None
        spark = (row or {}).get("spark") or {"in": [], "p99": []}
        self.query_one("#spark-in", Sparkline).data = spark["in"][-60:] or [0]
        self.query_one("#spark-p99", Sparkline).data = spark["p99"][-60:] or [0]

    def selected_instance(self) -> str | None:
        table = self.query_one("#instances", DataTable)
        if not self._shown or table.cursor_row is None or table.cursor_row >= len(self._shown):
            return None
        return self._shown[table.cursor_row]

    def selected_alert(self) -> dict | None:
        table = self.query_one("#alerts", AlertTable)
        if not table.alerts or table.cursor_row is None or table.cursor_row >= len(table.alerts):
            return None
        alert_id = table.alerts[table.cursor_row]["id"]
        return next((a for a in self.app.picture["alerts"] if a["id"] == alert_id), None)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "instances" and self.app.picture is not None:
            self._draw_sparks(self.app.picture)

    # -- actions --------------------------------------------------------------------------

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "alerts":
            alert = self.selected_alert()
            if alert is not None:
                self.app.open_instance(alert["instance"], alert=alert)
        else:
            key = self.selected_instance()
            if key is not None:
                self.app.open_instance(key)

    def action_open(self) -> None:
        focused = self.focused
        if isinstance(focused, DataTable):
            focused.action_select_cursor()

    def action_filter(self) -> None:
        field = self.query_one("#filter", Input)
        field.add_class("shown")
        field.focus()

    def action_clear_filter(self) -> None:
        field = self.query_one("#filter", Input)
        field.value = ""
        field.remove_class("shown")
        self.filter_text = ""
        self.query_one("#instances", DataTable).focus()
        self.refresh_picture()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self.filter_text = event.value
            self.refresh_picture()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            self.query_one("#instances", DataTable).focus()
