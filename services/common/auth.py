"""Signed, expiring tokens for clients, operators and service instances.

Format: base64url(payload-json) "." base64url(HMAC-SHA256(secret, first-part)), payload
{"sub": subject, "aud": audience, "jti": token id, "iat": s (ms precision), "exp": s[, "role": …]}.
base64url without padding; the HMAC key is the secret's bytes with surrounding whitespace
stripped (the hex text of token.secret itself, not decoded). Claims are typed exactly: `sub`
a string, `iat`/`exp` JSON numbers, never strings (docs/protocol.md §2). HMAC keeps it
dependency-free and fast (one hash per connection); the secret never leaves the server side.

One secret signs every token, so the *audience* is what keeps them apart: a `client`
token logs in to the WebSocket gateway and nothing else; a `controlplane` token (role
viewer / operator / admin, or `service` for an instance's config stream) calls the control
plane and is refused by the gateway. A token without an audience (issued before audiences
existed) is refused everywhere. `jti` names one token so it can be revoked alone; `iat`
carries milliseconds so a per-user "not before" set at a revoke separates the tokens
issued before it from those issued right after it (services.backends.revocations).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import secrets
import time
from dataclasses import dataclass

import orjson

from .errors import Unauthorized

__all__ = [
    "AUDIENCE_CLIENT", "AUDIENCE_CONTROLPLANE", "AUDIENCES", "ROLE_SERVICE", "TokenClaims", "TokenExpired",
    "TokenRevoked", "WrongAudience", "issue_token", "verify_token", "peek_token", "peek_token_id",
]

AUDIENCE_CLIENT = "client"  # the WebSocket gateway
AUDIENCE_CONTROLPLANE = "controlplane"  # the control plane's gRPC API and config stream
AUDIENCES = (AUDIENCE_CLIENT, AUDIENCE_CONTROLPLANE)
ROLE_SERVICE = "service"  # a Flare instance subscribing to its documents; no operator powers


class TokenExpired(Unauthorized):
    code = "token_expired"


class TokenRevoked(Unauthorized):
    code = "token_revoked"


class WrongAudience(Unauthorized):
    code = "wrong_audience"


@dataclass(frozen=True, slots=True)
class TokenClaims:
    subject: str
    issued_at: float
    expires_at: int
    role: str | None = None
    audience: str = AUDIENCE_CLIENT
    token_id: str = ""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue_token(secret: bytes, subject: str, *, ttl_s: int = 24 * 3600, role: str | None = None,
                audience: str | None = None, now: float | None = None) -> str:
    """A signed token. `audience` defaults to `controlplane` when a role is given, else `client`."""
    audience = audience or (AUDIENCE_CONTROLPLANE if role is not None else AUDIENCE_CLIENT)
    if audience not in AUDIENCES:
        raise ValueError(f"audience must be one of {', '.join(AUDIENCES)}")
    if audience == AUDIENCE_CLIENT and role is not None:
        raise ValueError("client tokens carry no role")
    issued = time.time() if now is None else now
    # jti in hex: an id beginning with "-" would read as an option to `flarectl auth token revoke`.
    payload: dict[str, object] = {"sub": subject, "aud": audience, "jti": secrets.token_hex(12),
                                  "iat": math.floor(issued * 1000) / 1000, "exp": int(issued) + ttl_s}
    if role is not None:
        payload["role"] = role
    body = _b64(orjson.dumps(payload))
    signature = _b64(hmac.new(secret, body.encode(), hashlib.sha256).digest())
    return f"{body}.{signature}"


def verify_token(secret: bytes, token: str | None, *, audience: str, now: float | None = None) -> TokenClaims:
    """The claims of a token signed with `secret` for `audience`, or Unauthorized
    (TokenExpired when only the time is wrong, WrongAudience for another audience's token).
    Revocation is checked by the caller (services.backends.revocations)."""
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
        subject=_claim(payload, "sub", (str,)), issued_at=float(_claim(payload, "iat", (int, float))),
        expires_at=int(_claim(payload, "exp", (int, float))), role=payload.get("role"),
        audience=str(payload.get("aud") or ""), token_id=str(payload.get("jti") or ""),
    )
    if claims.audience != audience:
        if not claims.audience:
            raise WrongAudience(f"token has no audience (issued by an older Flare); issue a new {audience} token")
        raise WrongAudience(f"this is a {claims.audience} token; it is not valid for the {audience}")
    if claims.expires_at <= (time.time() if now is None else now):
        raise TokenExpired("token expired")
    return claims


def _claim(payload: dict, name: str, kinds: tuple[type, ...]):
    """A claim of exactly this JSON type: "exp": "1700000000" or "sub": 42 is refused, not coerced."""
    value = payload.get(name)
    if not isinstance(value, kinds) or isinstance(value, bool):
        what = "a string" if kinds == (str,) else "a number (seconds since the Unix epoch)"
        raise Unauthorized(f"malformed token payload: '{name}' must be {what}")
    return value


def peek_token_id(token: str) -> str:
    """The `jti` of a token, read without checking its signature (to name it in a revoke)."""
    return str(peek_token(token)["jti"])


def peek_token(token: str) -> dict:
    """A token's payload, *unverified*: only for naming it (its id, its expiry) in a revoke."""
    try:
        payload = orjson.loads(_unb64(token.strip().split(".")[0]))
        if not isinstance(payload, dict) or not isinstance(payload.get("jti"), str):
            raise ValueError("no jti")
        return payload
    except (ValueError, TypeError, IndexError) as exc:
        raise Unauthorized("not a Flare token (no token id in it)") from exc
