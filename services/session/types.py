"""What the session service answers: the values its clients see, in-process or over gRPC."""

from __future__ import annotations

from dataclasses import dataclass

from services.common.model import Session

__all__ = ["LoginResult"]


@dataclass(slots=True)
class LoginResult:
    session: Session
    replaced: Session | None = None  # the old connection, for the gateway to close with 4003
