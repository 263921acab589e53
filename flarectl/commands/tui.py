"""`flarectl tui [--readonly] [--record FILE | --replay FILE]`: the on-call view (flarectl/tui/)."""

from __future__ import annotations

import typer

from flarectl.console import fail_from
from flarectl.contexts import resolve_target
from flarectl.cpclient import CONTEXT_OPTION
from services.common.errors import FlareError

__all__ = ["tui", "COMMANDS"]


def tui(
    readonly: bool = typer.Option(False, "--readonly", help="Look only: no rollback (viewer tokens always are)."),
    record: str | None = typer.Option(None, "--record", help="Save the stream of snapshots (gzip) to FILE."),
    replay: str | None = typer.Option(None, "--replay", help="Play a recording back: space pause, n step, j jump."),
    speed: float = typer.Option(1.0, "--speed", help="With --replay: playback speed.", min=0.1, max=100.0),
    context: str | None = CONTEXT_OPTION,
) -> None:
    """Live overview, instance drill-down, config history/diff/rollback and alerts (k9s keys: / ? : Esc)."""
    from flarectl.tui.app import FlareTui
    from flarectl.tui.source import Recording

    if record and replay:
        raise typer.BadParameter("--record and --replay exclude each other", param_hint="--record")
    try:
        if replay:
            app = FlareTui(recording=Recording.load(replay), replay_speed=speed)
        else:
            target = resolve_target(context)
            app = FlareTui(address=target.address, token=target.token, readonly=readonly, record=record)
    except FlareError as exc:
        fail_from(exc)
    except OSError as exc:
        fail_from(FlareError(f"cannot write {record}: {exc.strerror or exc}"))
    app.run()


COMMANDS = {"tui": tui}
