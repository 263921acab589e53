"""Config: the documents served, a kind's history, the diff between any two versions, and
rollback (operator and up, after a confirmation; never with --readonly or a viewer token)."""

from __future__ import annotations

import difflib

import yaml
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Header, Static

from ..messages import ConfigLoaded
from ..widgets.status_bar import StatusBar
from ..widgets.tables import add_fixed_columns
from .confirm_screen import ConfirmScreen
from .picture_screen import PictureScreen

__all__ = ["ConfigScreen", "version_diff"]


def version_diff(older: dict, newer: dict) -> str:
    def lines(doc: dict) -> list[str]:
        return yaml.safe_dump(doc["spec"], sort_keys=True, allow_unicode=True).splitlines()

    diff = difflib.unified_diff(lines(older), lines(newer), f"v{older['version']}", f"v{newer['version']}",
                                lineterm="", n=1)
    return "\n".join(diff) or f"v{older['version']} and v{newer['version']} have the same spec"


class ConfigScreen(PictureScreen):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back"), Binding("m", "mark", "Mark"),
                Binding("d", "diff", "Diff"), Binding("r", "rollback", "Roll back")]
    DEFAULT_CSS = """
    ConfigScreen #documents { height: 7; }
    ConfigScreen #history { height: 1fr; }
    ConfigScreen #diff { height: auto; max-height: 9; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.kind: str | None = None
        self.history: list[dict] = []
        self.marked: int | None = None
        self._kinds: list[str] = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield StatusBar()
        yield DataTable(id="documents", cursor_type="row")
        yield DataTable(id="history", cursor_type="row")
        yield Static(id="diff")
        yield Footer()

    def on_mount(self) -> None:
        add_fixed_columns(self.query_one("#documents", DataTable), [("KIND", 12), ("SERVED", 6)])
        add_fixed_columns(self.query_one("#history", DataTable),
                          [("VERSION", 7), ("UPDATED", 24), ("BY", 12), ("COMMENT", 24)])
        self.picture_ready()

    def on_screen_resume(self) -> None:
        self.app.sub_title = "overview › config" + (f" › {self.kind}" if self.kind else "")

    def draw(self, picture: dict) -> None:
        kinds = sorted(picture.get("documents", {}))
        if kinds != self._kinds:
            table = self.query_one("#documents", DataTable)
            table.clear()
            for kind in kinds:
                table.add_row(kind, f"v{picture['documents'][kind]}", key=kind)
            self._kinds = kinds

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "documents" and 0 <= event.cursor_row < len(self._kinds):
            self.kind = self._kinds[event.cursor_row]
            self.marked = None
            self.app.sub_title = f"overview › config › {self.kind}"
            self.query_one("#diff", Static).update(f"loading {self.kind} history…")
            self.app.load_history(self.kind)

    def on_config_loaded(self, message: ConfigLoaded) -> None:
        if message.kind != self.kind:
            return
        diff = self.query_one("#diff", Static)
        if message.error:
            diff.update(f"history of {message.kind} not loaded: {message.error}")
            return
        self.history = message.history
        table = self.query_one("#history", DataTable)
        table.clear()
        for doc in self.history:
            table.add_row(f"v{doc['version']}", doc.get("updated_at", ""), doc.get("updated_by", ""),
                          doc.get("comment", ""))
        table.focus()
        diff.update("m: mark a version · d: diff marked ↔ selected (or selected ↔ previous) · r: roll back")

    def _selected(self) -> dict | None:
        table = self.query_one("#history", DataTable)
        if not self.history or table.cursor_row is None or table.cursor_row >= len(self.history):
            return None
        return self.history[table.cursor_row]

    def action_mark(self) -> None:
        doc = self._selected()
        if doc is not None:
            self.marked = doc["version"]
            self.query_one("#diff", Static).update(f"marked v{doc['version']}; select another and press d")

    def action_diff(self) -> None:
        doc = self._selected()
        if doc is None:
            return
        by_version = {d["version"]: d for d in self.history}
        other = by_version.get(self.marked) if self.marked is not None else None
        if other is None:  # no mark: against the version before it
            older = [d for d in self.history if d["version"] < doc["version"]]
            other = older[0] if older else None
        if other is None:
            self.query_one("#diff", Static).update(f"v{doc['version']} is the oldest version kept")
            return
        older, newer = sorted((doc, other), key=lambda d: d["version"])
        self.query_one("#diff", Static).update(version_diff(older, newer))

    def action_rollback(self) -> None:
        doc = self._selected()
        if doc is None or self.kind is None:
            return
        if self.app.readonly:
            self.app.notify("read-only: rollback needs an operator token and no --readonly", severity="warning")
            return
        kind, version = self.kind, doc["version"]

        def answered(yes: bool | None) -> None:
            if yes:
                self.app.rollback(kind, version, doc["spec"])

        self.app.push_screen(ConfirmScreen(f"Roll {kind} back to v{version}? Every instance gets it pushed."),
                             answered)
