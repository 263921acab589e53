"""`?`: the keys."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

__all__ = ["HelpScreen", "KEYS"]

KEYS = """\
Enter  open an instance (on an alert: its instance, the reason on top)
/      filter instances        Esc  back, or clear the filter
a      alerts: firing and log  c    config: history, diff, rollback
:      command palette         ?    this help         q  quit
Tab    next table (instances, alerts)
config  Enter history · m mark · d diff marked↔selected · r roll back
replay  space pause · n step · j jump (HH:MM:SS UTC or +30s)"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape", "app.pop_screen", "Close"), Binding("question_mark", "app.pop_screen", "Close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen Vertical { width: 74; height: auto; border: round $accent; background: $surface; padding: 0 1; }
    """

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("keys", classes="title")
            yield Static(KEYS)
