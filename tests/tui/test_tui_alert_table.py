"""AlertTable (flarectl/tui/widgets/alert_table.py), the one way the overview, the alerts screen
and an instance's own alerts draw an alert: its columns, redrawing only when other alerts are
shown (so the cursor stays), the SINCE cells alone on a later picture."""

from __future__ import annotations

from textual.app import App, ComposeResult

from flarectl.tui.widgets.alert_table import AlertTable, worst_first


def _alert(alert_id: str, kind: str, instance: str, since: float, reason: str) -> dict:
    return {"id": alert_id, "alert": kind, "instance": instance, "since": since, "reason": reason}


DOWN = _alert("a1", "DOWN", "router/router-1", 100, "stream closed")
LAG = _alert("a2", "LAG_GROWING", "store/store-1", 90, "consumer lag 73 records")
STALE = _alert("a3", "STALE", "filter/filter-1", 95, "no summary for 30s")


class _Tables(App):
    def compose(self) -> ComposeResult:
        yield AlertTable(id="all")
        yield AlertTable(id="own", show_instance=False, reason_width=50)


def _rows(table: AlertTable) -> list[tuple]:
    return [tuple(table.get_row_at(i)) for i in range(table.row_count)]


def test_worst_first_orders_by_severity_then_instance():
    assert [a["id"] for a in worst_first([STALE, LAG, DOWN])] == ["a1", "a2", "a3"]


async def test_columns_and_cells_with_and_without_the_instance():
    app = _Tables()
    async with app.run_test(size=(120, 24)):
        every, own = app.query_one("#all", AlertTable), app.query_one("#own", AlertTable)
        assert [(str(c.label), c.width) for c in every.columns.values()] == [
            ("ALERT", 11), ("INSTANCE", 16), ("SINCE", 8), ("REASON", 35)]
        assert [(str(c.label), c.width) for c in own.columns.values()] == [("ALERT", 11), ("SINCE", 8), ("REASON", 50)]
        every.draw([DOWN, LAG], now=103)
        own.draw([DOWN], now=103)
        assert _rows(every) == [("DOWN", "router/router-1", "3s ago", "stream closed"),
                                ("LAG_GROWING", "store/store-1", "13s ago", "consumer lag 73 records")]
        assert _rows(own) == [("DOWN", "3s ago", "stream closed")]


async def test_show_keeps_the_rows_and_cursor_while_the_same_alerts_are_shown():
    app = _Tables()
    async with app.run_test(size=(120, 24)) as pilot:
        table = app.query_one("#all", AlertTable)
        assert table.show([DOWN, LAG, STALE], now=103) is True
        table.move_cursor(row=2)
        await pilot.pause()
        newer_lag = {**LAG, "reason": "consumer lag 353 records"}
        assert table.show([DOWN, newer_lag, STALE], now=110) is False  # same ids: not redrawn
        assert table.cursor_row == 2 and table.alerts[1]["reason"] == "consumer lag 353 records"
        table.refresh_since(now=110)
        assert [row[2] for row in _rows(table)] == ["10s ago", "20s ago", "15s ago"]
        assert _rows(table)[1][3] == "consumer lag 73 records"  # only SINCE is refreshed in place
        assert table.show([DOWN, STALE], now=111) is True  # LAG cleared: redrawn
        assert [row[0] for row in _rows(table)] == ["DOWN", "STALE"] and table.cursor_row == 0
