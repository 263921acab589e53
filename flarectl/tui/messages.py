"""Messages the TUI's workers post to the app (dataclasses, as Textual wants them)."""

from __future__ import annotations

from dataclasses import dataclass, field

from textual.message import Message

__all__ = ["PictureUpdated", "LinkChanged", "ReplayPosition", "ConfigLoaded", "ActionDone"]


@dataclass
class PictureUpdated(Message):
    """The folded picture after one update (controlplane.aggregate.apply_changes)."""

    picture: dict


@dataclass
class LinkChanged(Message):
    """The control plane link: up, or down with why (the app keeps reconnecting)."""

    connected: bool
    error: str = ""


@dataclass
class ReplayPosition(Message):
    index: int
    total: int
    at: float
    paused: bool


@dataclass
class ConfigLoaded(Message):
    kind: str
    history: list[dict] = field(default_factory=list)
    error: str = ""


@dataclass
class ActionDone(Message):
    text: str
    ok: bool = True
