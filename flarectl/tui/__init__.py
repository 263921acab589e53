"""`flarectl tui`: the on-call view (Textual). app.py builds it; screens/ holds one module per
screen; widgets/ the pieces they share; source.py the live stream, the recorder and the
replay; messages.py what workers post back. All network and file I/O runs in workers."""

from __future__ import annotations

__all__ = ["FlareTui"]


def __getattr__(name: str):
    if name == "FlareTui":
        from .app import FlareTui
        return FlareTui
    raise AttributeError(name)
