"""The instance side of the control plane (Envoy's xDS client, in small).

    agent = ConfigAgent("filter", "filter-1", "127.0.0.1:9101",
                        appliers={"filter-rules": filter_service.apply_config_rules},
                        state_dir=Path(".flare/agent/filter-1"),
                        control_plane="127.0.0.1:8702", token=token)   # or control_plane=cp (in-process)
    await agent.start()

At start it applies the last known-good document of each kind from `state_dir` before the
control plane answers, so an instance restarted while the control plane or etcd is down
still serves its last config. Then it subscribes; each pushed document is applied by the
kind's applier: success -> ACK and the document becomes the new known-good on disk; an
exception -> NACK with the message, and the previous version stays in force. A dropped
stream is retried with backoff forever; on reconnect the hello says what the instance
runs, so the daemon pushes only what changed meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from services.backends.configstore import ConfigStore
from services.common import codec
from services.common.errors import FlareError, NotFound
from services.common.paths import ensure_private_dir, write_private
from services.common.retry import RetryPolicy

from . import keys
from services.common.documents import StoredDocument, decode_stored, now_iso
from .messages import Hello, Report
from .transport import Connector, GrpcConnector

__all__ = ["ConfigAgent", "Applier", "appliers_for"]

log = logging.getLogger("flare.controlplane.agent")

Applier = Callable[[dict], Awaitable[None]]

_RECONNECT = RetryPolicy(max_attempts=1_000_000, base_delay=0.1, max_delay=2.0, multiplier=2.0)


class ConfigAgent:
    def __init__(self, service: str, instance_id: str, address: str, appliers: Mapping[str, Applier],
                 state_dir: str | Path, control_plane: object, *, token: str | None = None,
                 registry: ConfigStore | None = None, retry: RetryPolicy = _RECONNECT,
                 software_version: str = "", lease_ttl_s: int = 10,
                 summary: Callable[[], dict] | None = None, summary_interval_s: float = 1.0) -> None:
        self.service = service
        self.instance_id = instance_id
        self.address = address
        self._appliers = dict(appliers)
        self._state_dir = Path(state_dir)
        self._connector = self._connector_for(control_plane, token)
        self._registry = registry
        self._retry = retry
        self._software_version = software_version
        self._lease_ttl = lease_ttl_s
        self._summary = summary
        self._summary_interval = summary_interval_s
        self._started_at = now_iso()
        self.current: dict[str, StoredDocument] = {}
        self.connected = asyncio.Event()
        self._changed = asyncio.Condition()
        self._tasks: list[asyncio.Task] = []

    @property
    def kinds(self) -> list[str]:
        """The document kinds this instance consumes."""
        return sorted(self._appliers)

    @staticmethod
    def _connector_for(control_plane: object, token: str | None) -> Connector:
        if isinstance(control_plane, str):
            return GrpcConnector(control_plane, token=token)
        if hasattr(control_plane, "local"):  # an in-process ControlPlane
            return control_plane.local()  # type: ignore[union-attr]
        return control_plane  # type: ignore[return-value]

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        ensure_private_dir(self._state_dir)
        for kind in self._appliers:
            await self._apply_cached(kind)
        self._tasks.append(asyncio.create_task(self._run(), name=f"agent-{self.instance_id}"))
        if self._registry is not None:
            self._tasks.append(asyncio.create_task(self._register_loop(), name=f"agent-lease-{self.instance_id}"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        self.connected.clear()

    async def wait_for_version(self, kind: str, version: int, *, timeout: float = 10.0) -> StoredDocument:
        """Until `kind` runs at `version` or newer (tests and `flarectl up` readiness)."""
        async with asyncio.timeout(timeout):
            async with self._changed:
                await self._changed.wait_for(lambda: kind in self.current and self.current[kind].version >= version)
        return self.current[kind]

    # -- known-good cache -------------------------------------------------------------------

    def _path(self, kind: str) -> Path:
        return self._state_dir / f"{kind}.json"

    async def _apply_cached(self, kind: str) -> None:
        path = self._path(kind)
        if not path.exists():
            return
        try:
            doc = decode_stored(kind, path.read_bytes())
            await self._appliers[kind](dict(doc.spec))
        except Exception as exc:  # a cache this code can no longer apply is dropped, not fatal
            log.warning("%s: cached %s not applied (%s); waiting for the control plane", self.instance_id, kind, exc)
            return
        await self._set_current(doc)

    def _persist(self, doc: StoredDocument) -> None:
        # Write-then-rename: a crash mid-write leaves the previous known-good intact.
        path = self._path(doc.kind)
        tmp = path.with_suffix(".json.tmp")
        write_private(tmp, doc.to_json())
        os.replace(tmp, path)

    async def _set_current(self, doc: StoredDocument) -> None:
        async with self._changed:
            self.current[doc.kind] = doc
            self._changed.notify_all()

    # -- the stream -------------------------------------------------------------------------

    def _hello(self) -> Hello:
        return Hello(service=self.service, instance_id=self.instance_id, address=self.address,
                     kinds=tuple(self._appliers), started_at=self._started_at,
                     applied={k: (d.version, d.digest) for k, d in self.current.items()},
                     software_version=self._software_version, self_registered=self._registry is not None)

    async def _run(self) -> None:
        attempt = 0
        while True:
            try:
                async with self._connector.connect(self._hello()) as link:
                    self.connected.set()
                    attempt = 0
                    summaries = asyncio.create_task(self._send_summaries(link)) if self._summary else None
                    try:
                        async for doc in link.pushes():
                            await link.report(await self._apply(doc))
                    finally:
                        if summaries is not None:
                            summaries.cancel()
                            with contextlib.suppress(asyncio.CancelledError, FlareError):
                                await summaries
            except FlareError as exc:
                log.info("%s: control plane link down (%s)", self.instance_id, exc)
            finally:
                self.connected.clear()
            attempt += 1
            await asyncio.sleep(self._retry.delay(min(attempt, 20)))

    async def _send_summaries(self, link) -> None:
        # Pushed, not scraped: the stream is already open, so liveness and numbers share it
        # (ARCHITECTURE §7a). A summary that cannot be measured is skipped, never fatal.
        assert self._summary is not None
        while True:
            try:
                summary = self._summary()
            except Exception as exc:
                log.debug("%s: summary skipped: %s", self.instance_id, exc)
            else:
                await link.summary(summary)
            await asyncio.sleep(self._summary_interval)

    async def _apply(self, doc: StoredDocument) -> Report:
        def report(ok: bool, error: str = "") -> Report:
            return Report(kind=doc.kind, version=doc.version, digest=doc.digest, ok=ok, error=error)

        applier = self._appliers.get(doc.kind)
        if applier is None:
            return report(False, f"{self.service} does not consume {doc.kind}")
        current = self.current.get(doc.kind)
        if current is not None and (current.version, current.digest) == (doc.version, doc.digest):
            return report(True)
        try:
            await applier(dict(doc.spec))
        except Exception as exc:  # any failure is the instance's answer: NACK, keep the old version
            message = exc.message if isinstance(exc, FlareError) and exc.message else f"{type(exc).__name__}: {exc}"
            log.warning("%s: NACK %s v%d: %s", self.instance_id, doc.kind, doc.version, message)
            return report(False, message)
        try:
            self._persist(doc)
        except OSError as exc:
            log.warning("%s: %s v%d applied but not cached on disk: %s", self.instance_id, doc.kind, doc.version, exc)
        await self._set_current(doc)
        return report(True)

    # -- self-registration (split mode, when the instance can reach the store) ---------------

    async def _register_loop(self) -> None:
        assert self._registry is not None
        record = codec.dumps({"address": self.address, "version": self._software_version,
                              "started_at": self._started_at, "kinds": list(self._appliers)})
        key = keys.topology_key(self.service, self.instance_id)
        lease = 0
        while True:
            try:
                if lease == 0:
                    lease = await self._registry.lease_grant(self._lease_ttl)
                    await self._registry.put(key, record, lease=lease)
                await asyncio.sleep(max(0.5, self._lease_ttl / 3))
                await self._registry.lease_keepalive(lease)
            except NotFound:
                lease = 0  # expired while the store was away: register again
            except FlareError as exc:
                log.info("%s: topology registration pending (%s)", self.instance_id, exc)
                await asyncio.sleep(1.0)


def appliers_for(service: object, kinds: list[str] | tuple[str, ...]) -> dict[str, Applier]:
    """Appliers from a service's `async apply_config(kind, document)` (the convention every
    Flare service follows), e.g. `appliers_for(filter_service, ["filter-rules"])`."""
    apply_config = service.apply_config  # type: ignore[attr-defined]

    def bind(kind: str) -> Applier:
        async def apply(document: dict) -> None:
            await apply_config(kind, document)

        return apply

    return {kind: bind(kind) for kind in kinds}
