"""Signed, expiring tokens for clients and operators.

Format: base64url(payload-json) "." base64url(HMAC-SHA256(secret, first-part)), payload
{"sub": subject, "iat": s, "exp": s[, "role": …]}. HMAC keeps it dependency-free and fast
(one hash per connection); the secret never leaves the server side.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass

import orjson

from .errors import Unauthorized

__all__ = ["TokenClaims", "TokenExpired", "issue_token", "verify_token"]


class TokenExpired(Unauthorized):
    code = "token_expired"


@dataclass(frozen=True, slots=True)
class TokenClaims:
    subject: str
    issued_at: int
    expires_at: int
    role: str | None = None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue_token(secret: bytes, subject: str, *, ttl_s: int = 24 * 3600, role: str | None = None, now: float | None = None) -> str:
    issued = int(time.time() if now is None else now)
    payload: dict[str, object] = {"sub": subject, "iat": issued, "exp": issued + ttl_s}
    if role is not None:
        payload["role"] = role
    body = _b64(orjson.dumps(payload))
    signature = _b64(hmac.new(secret, body.encode(), hashlib.sha256).digest())
    return f"{body}.{signature}"


def verify_token(secret: bytes, token: str | None, *, now: float | None = None) -> TokenClaims:
    """Return the claims, or raise Unauthorized (TokenExpired when only the time is wrong)."""
    if not token:
        raise Unauthorized("missing token")
    if len(token) > 4096 or token.count(".") != 1:
        raise Unauthorized("malformed token")
    body, signature = token.split(".")
    expected = _b64(hmac.new(secret, body.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(expected, signature):
        raise Unauthorized("bad token signature")
    try:
        payload = orjson.loads(_unb64(body))
        claims = TokenClaims(
            subject=str(payload["sub"]), issued_at=int(payload["iat"]), expires_at=int(payload["exp"]),
            role=payload.get("role"),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise Unauthorized("malformed token payload") from exc
    if claims.expires_at <= (time.time() if now is None else now):
        raise TokenExpired("token expired")
    return claims
