"""Session service: per-device sessions, routes (user -> devices -> gateway) and presence."""

from .client import InProcessSessionClient, SessionClient
from .service import REPLACED_CLOSE_CODE, LoginResult, SessionService, route_key

__all__ = [
    "REPLACED_CLOSE_CODE",
    "InProcessSessionClient",
    "LoginResult",
    "SessionClient",
    "SessionService",
    "route_key",
]
