"""Connected instances: what each runs, what was pushed to it, and its status records.

Pushing is level-triggered (kopf style): `sync(session)` compares what the instance
reported running with what is served and pushes only the difference, so the same call
serves a new version, a reconnect and the periodic resync. A NACKed version is not pushed
again (it would fail the same way) until a newer one is served.
"""

from __future__ import annotations

import asyncio
import logging
import time

from services.backends.configstore import ConfigStore
from services.common import codec
from services.common.errors import FlareError, InvalidInput

from . import keys
from .desired import DesiredState
from services.common.documents import KINDS, StoredDocument, effective_document, now_iso
from .messages import Hello, Report

__all__ = ["Session", "Hub"]

log = logging.getLogger("flare.controlplane")


class Session:
    def __init__(self, hello: Hello) -> None:
        self.hello = hello
        self.outbox: asyncio.Queue[StoredDocument | None] = asyncio.Queue()
        self.running: dict[str, tuple[int, str]] = dict(hello.applied)
        self.nacked: dict[str, tuple[int, str, str]] = {}
        self.inflight: dict[str, tuple[int, str, float]] = {}

    @property
    def key(self) -> tuple[str, str]:
        return self.hello.service, self.hello.instance_id


class Hub:
    def __init__(self, store: ConfigStore, desired: DesiredState, *, ack_timeout_s: float = 30.0) -> None:
        self._store = store
        self._desired = desired
        self._ack_timeout = ack_timeout_s
        self.sessions: dict[tuple[str, str], Session] = {}
        self._unwritten: set[tuple[tuple[str, str], str]] = set()  # status records etcd did not take yet
        self.lease_id = 0  # the daemon's lease for the topology keys it writes for instances
        self.observer = None  # the Aggregator (controlplane/aggregate.py): told of attach, detach, reports, summaries

    async def attach(self, hello: Hello) -> Session:
        unknown = [k for k in hello.kinds if k not in KINDS]
        if unknown:
            raise InvalidInput(f"kinds: unknown kind {unknown[0]!r}", field="kinds")
        session = Session(hello)
        previous = self.sessions.get(session.key)
        if previous is not None:
            previous.outbox.put_nowait(None)  # a reconnect replaces the stale stream
        self.sessions[session.key] = session
        if self.observer is not None:
            self.observer.attached(session)
        await self._register(session)
        for kind in hello.applied:
            if kind in hello.kinds:
                await self._write_status(session, kind, state="ACK", version=hello.applied[kind])
        self.sync(session)
        return session

    async def detach(self, session: Session) -> None:
        if self.sessions.get(session.key) is session:
            del self.sessions[session.key]
            if self.observer is not None:
                self.observer.detached(session)
            if not session.hello.self_registered:
                try:
                    await self._store.delete(keys.topology_key(*session.key))
                except FlareError:
                    pass  # the daemon lease expiring removes it anyway

    def sync(self, session: Session, kinds: tuple[str, ...] | None = None) -> None:
        now = time.monotonic()
        for kind in kinds or session.hello.kinds:
            doc = effective_document(self._desired.served, kind, session.hello.instance_id)
            if doc is None or kind not in session.hello.kinds:
                continue
            want = (doc.version, doc.digest)
            if session.running.get(kind) == want or session.nacked.get(kind, ())[:2] == want:
                continue
            inflight = session.inflight.get(kind)
            if inflight and inflight[:2] == want and now - inflight[2] < self._ack_timeout:
                continue
            session.inflight[kind] = (*want, now)
            session.outbox.put_nowait(doc)

    def broadcast(self, doc: StoredDocument) -> None:
        # A canary changes what some instances of its target kind should run: sync every kind.
        kinds = None if doc.kind == "canary" else (doc.kind,)
        for session in list(self.sessions.values()):
            self.sync(session, kinds)

    async def report(self, session: Session, report: Report) -> None:
        pushed = session.inflight.get(report.kind)
        if pushed and pushed[:2] == (report.version, report.digest):
            del session.inflight[report.kind]
        if report.ok:
            session.running[report.kind] = (report.version, report.digest)
            session.nacked.pop(report.kind, None)
        else:
            session.nacked[report.kind] = (report.version, report.digest, report.error)
        if self.observer is not None:
            self.observer.reported(session)
        await self._write_status(session, report.kind, state="ACK" if report.ok else "NACK",
                                 version=(report.version, report.digest), error=report.error)

    def summary(self, session: Session, summary: dict) -> None:
        """An instance's pushed numbers; only a session still current is heard."""
        if self.observer is not None and self.sessions.get(session.key) is session:
            self.observer.summary(session, summary)

    async def resync(self) -> None:
        """The periodic level-triggered pass: re-register, rewrite lost status, re-push."""
        for session in list(self.sessions.values()):
            await self._register(session)
            self.sync(session)
        for session_key, kind in list(self._unwritten):
            session = self.sessions.get(session_key)
            self._unwritten.discard((session_key, kind))
            if session is not None:
                nack = session.nacked.get(kind)
                if nack and nack[:2] != session.running.get(kind):
                    await self._write_status(session, kind, state="NACK", version=nack[:2], error=nack[2])
                elif kind in session.running:
                    await self._write_status(session, kind, state="ACK", version=session.running[kind])

    async def _register(self, session: Session) -> None:
        if session.hello.self_registered:
            return
        hello = session.hello
        record = {"address": hello.address, "version": hello.software_version, "started_at": hello.started_at,
                  "kinds": list(hello.kinds), "registered_by": "controlplane"}
        try:
            await self._store.put(keys.topology_key(*session.key), codec.dumps(record), lease=self.lease_id)
        except FlareError as exc:  # NotFound: the daemon lease just expired; the keepalive loop re-grants
            log.warning("topology registration of %s/%s failed: %s", *session.key, exc)

    async def _write_status(self, session: Session, kind: str, *, state: str, version: tuple[int, str],
                            error: str = "") -> None:
        running = session.running.get(kind, (0, ""))
        record = {"kind": kind, "state": state, "version": version[0], "digest": version[1], "error": error,
                  "running_version": running[0], "running_digest": running[1], "at": now_iso()}
        try:
            await self._store.put(keys.status_key(*session.key, kind), codec.dumps(record))
        except FlareError as exc:
            log.warning("status record for %s/%s %s not written (%s); retried on resync", *session.key, kind, exc)
            self._unwritten.add((session.key, kind))
