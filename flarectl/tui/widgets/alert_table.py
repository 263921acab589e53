"""Alerts as a table, one row each: ALERT, INSTANCE, SINCE, REASON. The overview, the alerts
screen and an instance's own alerts (no INSTANCE column there: the screen names it) draw an
alert the same way, from here."""

from __future__ import annotations

from textual.widgets import DataTable

from ..format import ago, severity
from .tables import add_fixed_columns

__all__ = ["AlertTable", "worst_first"]


def worst_first(alerts: list[dict]) -> list[dict]:
    return sorted(alerts, key=lambda a: (severity(a), a["instance"], a["id"]))


class AlertTable(DataTable):
    def __init__(self, *, id: str, show_instance: bool = True, reason_width: int = 35) -> None:
        super().__init__(id=id, cursor_type="row")
        self._show_instance = show_instance
        self._reason_width = reason_width
        self.alerts: list[dict] = []  # what the rows show, in row order

    def on_mount(self) -> None:
        add_fixed_columns(self, [("ALERT", 11), *([("INSTANCE", 16)] if self._show_instance else []),
                                 ("SINCE", 8), ("REASON", self._reason_width)])

    def cells(self, alert: dict, now: float) -> tuple[str, ...]:
        since = ago(alert.get("since", 0), now)
        if self._show_instance:
            return alert["alert"], alert["instance"], since, alert["reason"]
        return alert["alert"], since, alert["reason"]

    def draw(self, alerts: list[dict], now: float) -> None:
        """Every row anew (the cursor goes back to the first)."""
        self.clear()
        for alert in alerts:
            self.add_row(*self.cells(alert, now), key=alert["id"])
        self.alerts = list(alerts)

    def show(self, alerts: list[dict], now: float) -> bool:
        """Redraw only when other alerts are to be shown (by id, in order), so the cursor stays
        where it was; True when it redrew."""
        changed = [a["id"] for a in alerts] != [a["id"] for a in self.alerts]
        if changed:
            self.draw(alerts, now)
        self.alerts = list(alerts)
        return changed

    def refresh_since(self, now: float) -> None:
        """The SINCE cells only, relative to the picture's `now`."""
        column = 2 if self._show_instance else 1
        for index, alert in enumerate(self.alerts):
            self.update_cell_at((index, column), ago(alert.get("since", 0), now))
