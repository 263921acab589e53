"""One instance: health and last seen, rates, latencies, connections or lag per partition,
each config kind with the applied version and the last NACK reason, and its alerts (the one
Enter came from first)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Footer, Header, Sparkline, Static

from ..format import ago, clock
from ..widgets.alert_table import AlertTable
from ..widgets.status_bar import StatusBar
from ..widgets.tables import add_fixed_columns
from .picture_screen import PictureScreen

__all__ = ["InstanceScreen", "describe", "describe_finding"]


def describe(row: dict, now: float) -> str:
    rates = row.get("rates") or {}
    latency = row.get("latency_ms") or {}
    lines = [f"{row['service']}/{row['instance_id']}  {row['health']}  at {row.get('address') or '-'}",
             f"started {row.get('started_at') or '-'}  last seen {ago(row.get('last_seen', 0), now)}"
             f"  version {row.get('software_version') or '-'}",
             "rates/s  " + ("  ".join(f"{k} {v:g}" for k, v in sorted(rates.items())) or "-"),
             "latency  " + ("  ".join(f"{k} {v:g}ms" for k, v in sorted(latency.items())) or "-")]
    if row["service"] == "gateway":
        lines.append(f"connections {row.get('connections', 0)}")
    if row.get("lag"):
        lines.append("consumer lag " + "  ".join(f"p{p}={n}" for p, n in row["lag"].items())
                     + ("  (growing)" if row.get("lag_growing") else "")
                     + (f"  (stalled {row['lag_stalled_s']:.0f}s)" if row.get("lag_stalled_s") else ""))
    errors = rates.get("err")
    if errors:
        lines.append(f"recent errors {errors:g}/s")
    return "\n".join(lines)


def describe_finding(alert: dict) -> str:
    """A SEQ_GAP alert: the conversation, every missing seq range, and who found it when."""
    spans = alert.get("missing") or []
    missing = ", ".join(f"{a}" if a == b else f"{a}..{b}" for a, b in spans) or "-"
    return (f"conversation {alert['conversation']}\nmissing seqs {missing}\n"
            f"found by flarectl check consistency at {clock(alert.get('found_at', 0))}; "
            "rerun it after a repair (flarectl replay) to clear this")


class InstanceScreen(PictureScreen):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back")]
    DEFAULT_CSS = """
    InstanceScreen #reason { color: $error; text-style: bold; height: auto; }
    InstanceScreen #details { height: auto; }
    InstanceScreen #kinds { height: auto; max-height: 8; }
    InstanceScreen #own-alerts { height: auto; max-height: 6; }
    InstanceScreen Sparkline { height: 1; }
    """

    def __init__(self, instance: str, *, alert: dict | None = None) -> None:
        super().__init__()
        self.instance = instance
        self.alert = alert

    def compose(self) -> ComposeResult:
        yield Header()
        yield StatusBar()
        with VerticalScroll():
            yield Static(id="reason")
            yield Static(id="details")
            yield Static("msg/s")
            yield Sparkline([], id="spark-in")
            yield Static("p99 ms")
            yield Sparkline([], id="spark-p99")
            yield DataTable(id="kinds", cursor_type="row")
            yield AlertTable(id="own-alerts", show_instance=False, reason_width=50)
        yield Footer()

    def on_mount(self) -> None:
        add_fixed_columns(self.query_one("#kinds", DataTable),
                          [("KIND", 12), ("STATE", 8), ("APPLIED", 7), ("DESIRED", 7), ("LAST NACK", 30)])
        self.picture_ready()

    def on_screen_resume(self) -> None:
        self.app.sub_title = f"overview › {self.instance}"

    def draw(self, picture: dict) -> None:
        now = picture.get("at", 0)
        row = picture["rows"].get(self.instance)
        reason = self.query_one("#reason", Static)
        if self.alert is not None:
            live = next((a for a in picture["alerts"] if a["id"] == self.alert["id"]), None)
            state = "firing" if live else "cleared"
            reason.update(f"{self.alert['alert']} ({state}, since {clock(self.alert.get('since', 0))}): "
                          f"{self.alert['reason']}")
        else:
            reason.update("")
        details = self.query_one("#details", Static)
        if row is None and self.alert is not None and self.alert.get("conversation"):
            details.update(describe_finding(self.alert))  # SEQ_GAP: about a conversation, not an instance
            return
        if row is None:
            details.update(f"{self.instance}: no longer known to the control plane")
            return
        details.update(describe(row, now))
        spark = row.get("spark") or {"in": [], "p99": []}
        self.query_one("#spark-in", Sparkline).data = spark["in"][-60:] or [0]
        self.query_one("#spark-p99", Sparkline).data = spark["p99"][-60:] or [0]
        kinds = self.query_one("#kinds", DataTable)
        kinds.clear()
        for k in row.get("kinds", []):
            kinds.add_row(k["kind"], k["state"], f"v{k['applied_version']}", f"v{k['desired_version']}",
                          k.get("error") or "-")
        own = [alert for alert in picture["alerts"] if alert["instance"] == self.instance]
        self.query_one("#own-alerts", AlertTable).draw(own, now)
