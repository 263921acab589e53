"""Signed, expiring tokens for clients and operators.

Format: base64url(payload-json) "." base64url(HMAC-SHA256(secret, first-part)), payload
{"sub": subject, "iat": s, "exp": s[, "role": …]}; base64url without padding; the HMAC key
is the secret file's bytes with surrounding whitespace stripped (the hex text itself, not
decoded); `sub` is a string, `iat`/`exp` integers (docs/protocol.md, "Tokens"). HMAC keeps it dependency-free and fast
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
    except ValueError as exc:
        raise Unauthorized("malformed token payload: not base64url JSON") from exc
    if not isinstance(payload, dict):
        raise Unauthorized("malformed token payload: not a JSON object")
    claims = TokenClaims(
        subject=_claim(payload, "sub", str), issued_at=_claim(payload, "iat", int),
        expires_at=_claim(payload, "exp", int), role=payload.get("role"),
    )
    if claims.expires_at <= (time.time() if now is None else now):
        raise TokenExpired("token expired")
    return claims


def _claim(payload: dict, name: str, kind: type):
    """A claim of exactly this JSON type: "exp": "1700000000" or "sub": 42 is refused, not coerced."""
    value = payload.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        what = "a string" if kind is str else "an integer (seconds since the Unix epoch)"
        raise Unauthorized(f"malformed token payload: '{name}' must be {what}")
    return value
