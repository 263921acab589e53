"""The live line while a test runs (only on a terminal, only for the table output)."""

from __future__ import annotations

from rich.console import Console
from rich.live import Live
from rich.table import Table

from .engine import Progress

__all__ = ["LiveProgress"]


class LiveProgress:
    def __init__(self, console: Console) -> None:
        self.live = Live(self._render(None), console=console, refresh_per_second=4, transient=True)

    def __enter__(self) -> LiveProgress:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.__exit__(*exc)

    def update(self, progress: Progress) -> None:
        self.live.update(self._render(progress))

    @staticmethod
    def _render(p: Progress | None) -> Table:
        t = Table(show_header=True, header_style="bold", box=None)
        for column in ("phase", "elapsed", "connected", "sent", "sent/s", "stored", "delivered/s", "p99 ms", "errors"):
            t.add_column(column, justify="right")
        if p is None:
            t.add_row("starting", "", "", "", "", "", "", "", "")
        else:
            t.add_row(
                p.phase, f"{p.elapsed_s:.0f}s", f"{p.connected}/{p.devices}", str(p.sent), f"{p.sent_per_s:.0f}",
                str(p.stored), f"{p.delivered_per_s:.0f}", "–" if p.p99_ms is None else f"{p.p99_ms:.1f}",
                f"[red]{p.errors}[/]" if p.errors else "0",
            )
        return t
