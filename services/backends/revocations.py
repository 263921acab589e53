"""Token revocations, kept in the ConfigStore and mirrored in memory by every checker.

Two kinds of entry, both JSON values:

    /flare/revocations/tokens/<jti>   {"revoked_at": s, "by": who, "expires_at": s|0}
        one token (an operator's, a service's, a client's) by its id. Written under a
        lease that ends an hour after the token expires, so the list does not grow forever.
    /flare/revocations/users/<user>   {"not_before": s, "revoked_at": s, "by": who}
        every *client* token of that user issued before `not_before` (ms precision); one
        issued afterwards works. Kept until deleted (one small key per revoked user).

The control plane (authorizing every call) and each gateway (authorizing each WebSocket
login) hold a `Revocations`: it lists the prefix once, then follows the store's watch, so
a revoke reaches every gateway as fast as the store delivers a watch event (milliseconds
on etcd and on the embedded store), and `check` is a dict lookup. Listeners hear every new
user not-before, which is how a gateway closes the connections a revoke invalidated.

The mirror holds what the store holds under the prefix and nothing more; expired token
entries are dropped from it as they are met.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable

import orjson

from services.common.auth import AUDIENCE_CLIENT, TokenClaims, TokenRevoked

from .configstore import ConfigStore, WatchEvent, WatchEventType
from .prefixwatch import PrefixWatch

__all__ = ["REVOCATIONS", "REVOKED_TOKENS", "REVOKED_USERS", "Revocations", "UserRevoked"]

log = logging.getLogger("flare.revocations")

REVOCATIONS = "/flare/revocations/"
REVOKED_TOKENS = REVOCATIONS + "tokens/"
REVOKED_USERS = REVOCATIONS + "users/"

UserRevoked = Callable[[str, float], None]  # (user, not_before)
TokenIdRevoked = Callable[[str], None]  # (token id)

_GRACE_S = 3600  # an entry outlives its token by this much (clock skew between issuers)
_MAX_LEASE_S = 10 * 365 * 86400


class Revocations:
    def __init__(self, store: ConfigStore) -> None:
        self._store = store
        self._tokens: dict[str, float] = {}  # jti -> expires_at (0: unknown, kept)
        self._users: dict[str, float] = {}  # user -> not_before
        self._listeners: list[UserRevoked] = []
        self._token_listeners: list[TokenIdRevoked] = []
        self._watch = PrefixWatch(store, REVOCATIONS, relist=self._load, apply=self._on_event,
                                  what="revocation", logger=log)
        self.loaded = asyncio.Event()

    # -- following the store ----------------------------------------------------------------
    async def start(self) -> None:
        """List once (so `check` is right from the first call), then follow the watch."""
        await self._watch.start()

    async def stop(self) -> None:
        await self._watch.stop()

    def add_listener(self, listener: UserRevoked) -> None:
        self._listeners.append(listener)

    def add_token_listener(self, listener: TokenIdRevoked) -> None:
        """Called with the id of every token revoked from now on (to end what it opened)."""
        self._token_listeners.append(listener)

    async def _load(self) -> int:
        kvs, revision = await self._store.get_prefix(REVOCATIONS)
        users_before, tokens_before = self._users, self._tokens
        self._tokens, self._users = {}, {}
        for kv in kvs:
            self._observe(kv.key, kv.value, notify=False)
        # What is new since the last list (events a broken watch missed) is announced now.
        for user, not_before in self._users.items():
            if not_before > users_before.get(user, 0.0):
                self._call(self._listeners, user, not_before)
        for token_id in self._tokens.keys() - tokens_before.keys():
            self._call(self._token_listeners, token_id)
        self.loaded.set()
        return revision

    async def _on_event(self, event: WatchEvent) -> None:
        if event.type is WatchEventType.PUT:
            self._observe(event.key, event.value)
        else:
            self._forget(event.key)

    def _observe(self, key: str, value: bytes, *, notify: bool = True) -> None:
        try:
            record = orjson.loads(value)
            if key.startswith(REVOKED_TOKENS):
                token_id = key.removeprefix(REVOKED_TOKENS)
                fresh = token_id not in self._tokens
                self._tokens[token_id] = float(record.get("expires_at") or 0)
                if fresh and notify:
                    self._call(self._token_listeners, token_id)
            elif key.startswith(REVOKED_USERS):
                user, not_before = key.removeprefix(REVOKED_USERS), float(record["not_before"])
                if not_before > self._users.get(user, 0.0):
                    self._users[user] = not_before
                    if notify:
                        self._call(self._listeners, user, not_before)
        except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError):
            log.warning("ignoring unreadable revocation %s", key)

    def _forget(self, key: str) -> None:
        if key.startswith(REVOKED_TOKENS):
            self._tokens.pop(key.removeprefix(REVOKED_TOKENS), None)
        elif key.startswith(REVOKED_USERS):
            self._users.pop(key.removeprefix(REVOKED_USERS), None)

    # -- mirroring into another process (the monolith's gateway workers) -------------------
    def entries(self) -> list[tuple[str, bytes]]:
        """What this mirror holds, as store entries, to seed another mirror with `apply`."""
        users = [(REVOKED_USERS + u, orjson.dumps({"not_before": nb})) for u, nb in self._users.items()]
        return users + [(REVOKED_TOKENS + t, orjson.dumps({"expires_at": e})) for t, e in self._tokens.items()]

    def apply(self, key: str, value: bytes) -> None:
        """One entry from another mirror (its listeners' news): as if the watch had sent it."""
        self._observe(key, value)

    @staticmethod
    def _call(listeners: list, *args: object) -> None:
        for listener in listeners:
            try:
                listener(*args)
            except Exception:  # a listener's bug must not stop the watch
                log.exception("revocation listener failed")

    # -- checking ---------------------------------------------------------------------------
    def check(self, claims: TokenClaims) -> None:
        """Raise TokenRevoked if the token was revoked by id, or is a client token issued
        before its user's not-before."""
        if claims.token_id and self.is_token_revoked(claims.token_id):
            raise TokenRevoked("token revoked")
        if claims.audience == AUDIENCE_CLIENT and claims.issued_at < self._users.get(claims.subject, 0.0):
            raise TokenRevoked("token revoked: this user's tokens issued before "
                               f"{_iso(self._users[claims.subject])} were revoked; get a new one")

    def user_not_before(self, user: str) -> float:
        return self._users.get(user, 0.0)

    def is_token_revoked(self, token_id: str) -> bool:
        expires_at = self._tokens.get(token_id)
        if expires_at is None:
            return False
        if expires_at and expires_at + _GRACE_S < time.time():
            del self._tokens[token_id]  # the token is dead anyway
            return False
        return True

    # -- writing (the control plane's Revoke) -----------------------------------------------
    async def revoke_token(self, token_id: str, *, by: str, expires_at: float = 0, dry_run: bool = False) -> dict:
        now = time.time()
        result = {"kind": "token", "id": token_id, "revoked_at": round(now, 3), "by": by,
                  "already": token_id in self._tokens, "dry_run": dry_run}
        if dry_run:
            return result
        lease = 0
        ttl = int(expires_at - now) + _GRACE_S
        if expires_at and ttl < _MAX_LEASE_S:  # else kept until deleted, like an unknown expiry
            lease = await self._store.lease_grant(max(1, ttl))
        record = {"revoked_at": result["revoked_at"], "by": by, "expires_at": expires_at}
        await self._store.put(REVOKED_TOKENS + token_id, orjson.dumps(record), lease=lease)
        self._observe(REVOKED_TOKENS + token_id, orjson.dumps(record))  # in force before the watch echoes it
        return result

    async def revoke_user(self, user: str, *, by: str, dry_run: bool = False) -> dict:
        # Rounded up to the ms (token iat is rounded down): a token issued in the same ms as
        # the revoke is refused rather than one issued before it slipping through.
        now = math.ceil(time.time() * 1000) / 1000
        result = {"kind": "user", "id": user, "not_before": now, "revoked_at": now, "by": by,
                  "previous_not_before": self._users.get(user, 0.0), "dry_run": dry_run}
        if dry_run:
            return result
        await self._store.put(REVOKED_USERS + user, orjson.dumps({"not_before": now, "revoked_at": now, "by": by}))
        self._observe(REVOKED_USERS + user, orjson.dumps({"not_before": now}))
        return result


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}Z"
