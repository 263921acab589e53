"""Session service: per-device sessions, routes (user -> devices -> gateway) and presence."""

from services.delivery.keys import route_key

from .client import SessionClient
from .service import REPLACED_CLOSE_CODE, SessionService
from .types import LoginResult

__all__ = [
    "REPLACED_CLOSE_CODE",
    "LoginResult",
    "SessionClient",
    "SessionService",
    "route_key",
]
