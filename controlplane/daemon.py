"""The control-plane daemon: one per deployment, in-process in the monolith.

    cp = ControlPlane(store, secret)
    await cp.start()                         # lists config/, starts watch, resync, keepalive
    port = await api.serve_grpc(cp, "127.0.0.1", 8702)   # controlplane/api.py
    agent = ConfigAgent(..., control_plane=cp.local())   # in-process agents need no gRPC
    ...
    await cp.stop()

Three loops: the watch on config/ (every write, including direct etcdctl writes, is
validated and served or rejected there), a periodic level-triggered resync (re-list and
re-push whatever differs — it repairs anything a missed event left stale), and the
keepalive of the lease that holds the topology keys the daemon writes for instances.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from services.backends.configstore import ConfigStore, WatchEvent, WatchEventType
from services.backends.prefixwatch import PrefixWatch
from services.backends.revocations import Revocations
from services.common.auth import issue_token, peek_token_id
from services.common.errors import BackendError, FlareError, InvalidInput, NotFound, Unauthorized
from services.common.model import validate_name

from . import keys
from .aggregate import Aggregator
from .desired import ApplyResult, DesiredState
from .findings import parse_record, seq_gap_alerts
from .roles import ISSUABLE_ROLES
from services.common.documents import KINDS, StoredDocument, manifest_parts
from .sessions import Hub
from .status import collect_status
from .transport import LocalConnector

__all__ = ["ControlPlane"]

log = logging.getLogger("flare.controlplane")


class ControlPlane:
    def __init__(self, store: ConfigStore, secret: bytes, *, resync_interval_s: float = 10.0,
                 lease_ttl_s: int = 10, ack_timeout_s: float = 30.0, owns_store: bool = True,
                 health_tick_s: float = 1.0) -> None:
        self.store = store
        self.secret = secret
        self._owns_store = owns_store
        self._resync_interval = resync_interval_s
        self._lease_ttl = lease_ttl_s
        self.desired = DesiredState(store, on_change=self._on_change)
        self.hub = Hub(store, self.desired, ack_timeout_s=ack_timeout_s)
        self.aggregator = Aggregator(self.hub, self.desired, tick_s=health_tick_s)
        self.hub.observer = self.aggregator
        self.revocations = Revocations(store)
        # Every write to config/, including a direct etcdctl one, is validated and served there.
        self._config_watch = PrefixWatch(store, keys.CONFIG, relist=self.desired.load,
                                         apply=self._on_config_event, what="config", logger=log)
        self._tasks: list[asyncio.Task] = []
        self._servers: list = []

    def _on_change(self, doc: StoredDocument) -> None:
        log.info("serving %s v%d (%s)", doc.kind, doc.version, doc.digest)
        self.hub.broadcast(doc)
        self.aggregator.poke()

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        if self._owns_store:
            await self.store.start()
        self.hub.lease_id = await self.store.lease_grant(self._lease_ttl)
        await self._forget_previous_registrations()
        revision = await self.desired.load()
        await self.revocations.start()
        self._tasks = [asyncio.create_task(self._config_watch.follow(revision), name="cp-watch"),
                       asyncio.create_task(self._resync_loop(), name="cp-resync"),
                       asyncio.create_task(self._keepalive_loop(), name="cp-keepalive"),
                       asyncio.create_task(self.aggregator.run(refresh_store=self._store_view), name="cp-health")]

    async def _forget_previous_registrations(self) -> None:
        # Topology keys a previous daemon wrote for its streams outlive it by the lease TTL;
        # those instances reconnect here and are registered again, the rest are gone.
        kvs, _ = await self.store.get_prefix(keys.TOPOLOGY)
        for kv in kvs:
            if b'"registered_by":"controlplane"' in kv.value and kv.lease != self.hub.lease_id:
                await self.store.delete(kv.key)

    async def stop(self) -> None:
        for server in self._servers:
            await server.stop(grace=0.5)
        self._servers.clear()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        await self.revocations.stop()
        for session in list(self.hub.sessions.values()):
            session.outbox.put_nowait(None)
        with contextlib.suppress(BackendError):
            await self.store.lease_revoke(self.hub.lease_id)
        if self._owns_store:
            await self.store.close()

    def attach_server(self, server) -> None:
        """A server bound to this daemon (api.serve_grpc): stopped first when the daemon stops."""
        self._servers.append(server)

    def local(self) -> LocalConnector:
        """The in-process handle an agent in the same process subscribes through."""
        return LocalConnector(self.hub)

    # -- loops ------------------------------------------------------------------------------

    async def _on_config_event(self, event: WatchEvent) -> None:
        value = event.value if event.type is WatchEventType.PUT else None
        await self.desired.observe(event.key.removeprefix(keys.CONFIG), value, event.mod_revision)

    async def _resync_loop(self) -> None:
        while True:
            await asyncio.sleep(self._resync_interval)
            try:
                await self.desired.load()
                await self.hub.resync()
            except FlareError as exc:
                log.warning("resync skipped: %s", exc)

    async def _keepalive_loop(self) -> None:
        while True:
            await asyncio.sleep(max(0.5, self._lease_ttl / 3))
            try:
                await self.store.lease_keepalive(self.hub.lease_id)
            except NotFound:
                # The lease expired (the store was away longer than the TTL): take a new one
                # and put the instances back into the topology.
                try:
                    self.hub.lease_id = await self.store.lease_grant(self._lease_ttl)
                    await self.hub.resync()
                except BackendError as exc:
                    log.warning("lease re-grant failed: %s", exc)
            except BackendError as exc:
                log.warning("lease keepalive failed: %s", exc)

    # -- admin operations (authorization happens at the API edge) ---------------------------

    def get(self, kind: str) -> StoredDocument:
        return self.desired.get(kind)

    async def apply_manifest(self, manifest: object, *, expect_version: int | None = None, dry_run: bool = False,
                             actor: str = "", comment: str = "") -> ApplyResult:
        kind, spec = manifest_parts(manifest)  # the spec is validated once, off the loop, in apply
        return await self.desired.apply(kind, spec, expect_version=expect_version, dry_run=dry_run, actor=actor,
                                        comment=comment)

    async def history(self, kind: str, *, limit: int = 0) -> list[StoredDocument]:
        if kind not in KINDS:
            raise InvalidInput(f"kind: unknown kind {kind!r}", field="kind")
        return await self.desired.history(kind, limit=limit)

    async def rollback(self, kind: str, to_version: int, *, actor: str = "", dry_run: bool = False) -> ApplyResult:
        return await self.desired.rollback(kind, to_version, actor=actor, dry_run=dry_run)

    async def status(self) -> dict:
        return {"instances": await collect_status(self.store, self.desired.served),
                "documents": [doc.to_dict() for doc in self.desired.served.values()],
                "rejections": await self.desired.rejections()}

    async def _store_view(self) -> list[dict]:
        self.aggregator.rejections = await self.desired.rejections()
        await self._read_findings()
        return await collect_status(self.store, self.desired.served)

    async def _read_findings(self) -> None:
        """SEQ_GAP alerts from what `flarectl check consistency` last wrote (controlplane/findings.py)."""
        kv = await self.store.get(keys.CONSISTENCY_FINDINGS)
        try:
            record = parse_record(kv.value if kv is not None else None)
        except InvalidInput as exc:  # a hand-written value: say so, raise nothing from it
            log.warning("%s; no SEQ_GAP alerts from it", exc)
            record = {"conversations": {}}
        self.aggregator.extra_alerts = seq_gap_alerts(record)

    def issue_token(self, role: str, *, subject: str = "flarectl", ttl_s: int = 7 * 86400) -> str:
        if role not in ISSUABLE_ROLES:
            raise InvalidInput(f"role: must be one of {', '.join(ISSUABLE_ROLES)}", field="role")
        if ttl_s <= 0:
            raise InvalidInput("ttl_s: must be positive", field="ttl_s")
        return issue_token(self.secret, subject, ttl_s=ttl_s, role=role)

    async def revoke(self, *, token_id: str = "", user: str = "", expires_at: int = 0, actor: str = "",
                     dry_run: bool = False) -> dict:
        """Revoke one token by id, or a user's client tokens issued until now."""
        if bool(token_id) == bool(user):
            raise InvalidInput("name exactly one of token_id and user", field="target")
        if token_id:
            if "." in token_id:  # a whole token was given: revoke it by its id
                try:
                    token_id = peek_token_id(token_id)
                except Unauthorized as exc:
                    raise InvalidInput(f"token_id: {exc}", field="token_id") from exc
            if not token_id.replace("-", "").replace("_", "").isalnum() or len(token_id) > 64:
                raise InvalidInput(f"token_id: {token_id[:70]!r} is not a token id", field="token_id")
            return await self.revocations.revoke_token(token_id, by=actor, expires_at=expires_at, dry_run=dry_run)
        try:
            validate_name(user, "user")
        except ValueError as exc:
            raise InvalidInput(str(exc), field="user") from exc
        return await self.revocations.revoke_user(user, by=actor, dry_run=dry_run)
