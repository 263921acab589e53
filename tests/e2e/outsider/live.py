"""What the outsider probes of a running `flarectl up` share (test_outsider_second_process,
_restarts, _hostile): the real process, a sender that follows the resend rule, and an audit
of a conversation's whole history.

Built from README.md, docs/protocol.md and docs/operations.md only. The process itself is
started by tests/e2e/flare_process.py (Flare's harness: `python -m flarectl.main up` with free
ports); everything said about it here comes from the outside: its ports, /healthz, /proc.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from websockets.exceptions import ConnectionClosed

from tests.e2e.flare_process import REPO, FlareProcess

from .client import Client, Frame, ProtocolError, c2c

__all__ = ["Sender", "audit", "flarectl", "group_rss_bytes", "wait_audit", "FlareProcess"]

# §6: after these the same client_msg_id is sent again (after retry_after where given)
RETRY_CODES = {"busy", "unavailable", "rate_limited"}


def flarectl(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """One flarectl command as an operator runs it, in its own process."""
    return subprocess.run([sys.executable, "-m", "flarectl.main", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "NO_COLOR": "1", **(env or {})})


def group_rss_bytes(proc: subprocess.Popen) -> int:
    """RSS of every process in `flarectl up`'s process group (the core and its gateway workers)."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) != proc.pid:
                continue
            for line in (entry / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except (OSError, ProcessLookupError):
            continue
    return total


@dataclass
class Sender:
    """One user sending to a peer, as §6 says a client must: every unconfirmed message is kept
    and sent again with the same client_msg_id until it is `stored`, across reconnects.

    `stored` maps client_msg_id -> msg_id of every `stored` ack ever seen; `conflicts` lists
    any client_msg_id later acked with another msg_id (§6 forbids it)."""

    url: str
    key: bytes
    user: str
    peer: str
    window: int = 8
    conversation_id: str | None = None  # a group conversation instead of the 1:1 with `peer`
    body_bytes: int = 0  # pad each body to this many bytes
    stored: dict[str, str] = field(default_factory=dict)
    duplicates: dict[str, bool] = field(default_factory=dict)  # cmid -> `duplicate` of its last stored ack
    conflicts: list[tuple[str, str, str]] = field(default_factory=list)
    received: dict[str, str] = field(default_factory=dict)  # cmid -> msg_id of its first `received` ack
    cut_after_received: set[str] = field(default_factory=set)  # `received`, then the connection dropped
    _awaiting: set[str] = field(default_factory=set)  # `received`, waiting for `stored`
    pending: list[str] = field(default_factory=list)  # sent (at least once), not yet stored
    sent: set[str] = field(default_factory=set)
    reconnects: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def conversation(self) -> str:
        return self.conversation_id or c2c(self.user, self.peer)

    def _record(self, cmid: str, ack: Frame) -> None:
        old = self.stored.get(cmid)
        if old is not None and old != ack["msg_id"]:
            self.conflicts.append((cmid, old, ack["msg_id"]))
        self.stored.setdefault(cmid, ack["msg_id"])
        self.duplicates[cmid] = bool(ack.get("duplicate"))
        if cmid in self.pending:
            self.pending.remove(cmid)

    async def _round(self, c: Client, cmids: list[str]) -> None:
        for cmid in cmids:
            self.sent.add(cmid)
            body = f"{self.user}:{cmid}"
            body += "x" * max(0, self.body_bytes - len(body))
            where = {"conversation_id": self.conversation_id} if self.conversation_id else {"to": self.peer}
            await c.send(body, client_msg_id=cmid, wait=None, **where)
        for cmid in cmids:
            try:
                received = await c.acks_for(cmid, "received", timeout=15)
                self.received.setdefault(cmid, received["received"]["msg_id"])
                self._awaiting.add(cmid)
                acks = await c.acks_for(cmid, timeout=15)
                self._awaiting.discard(cmid)
            except ProtocolError as exc:
                self._awaiting.discard(cmid)
                if exc.code not in RETRY_CODES:
                    raise
                self.errors.append(str(exc.code))
                await asyncio.sleep(float((exc.frame.get("details") or {}).get("retry_after", 0.2)))
                continue
            self._record(cmid, acks["stored"])

    async def resend(self, cmids: list[str], *, timeout: float = 30) -> None:
        """Send these client_msg_ids again (stored or not) until each is stored."""
        self.pending.extend(c for c in cmids if c not in self.pending)
        await self.run(asyncio.Event(), count=0, deadline=timeout)

    async def run(self, stop: asyncio.Event, *, count: int | None = None, deadline: float = 60) -> None:
        """Send new messages (`count` of them, or until `stop`), resending the pending ones first
        after every reconnect; ride out a server that goes away until `deadline` seconds pass."""
        loop = asyncio.get_running_loop()
        end = loop.time() + deadline
        new = 0
        resend_all = list(self.pending)
        while loop.time() < end:
            try:
                c = Client(self.url, self.key, self.user, "phone", auto_ack=False, heartbeat=False)
                await c.connect()
            except (OSError, ConnectionClosed, TimeoutError, asyncio.TimeoutError):
                if stop.is_set() and not self.pending:
                    return
                await asyncio.sleep(0.2)
                continue
            try:
                # resends first: every pending message, the explicitly requested ones included
                while self.pending or resend_all:
                    batch = (resend_all or list(self.pending))[: self.window]
                    resend_all = resend_all[len(batch):]
                    await self._round(c, batch)
                while not stop.is_set() and (count is None or new < count) and loop.time() < end:
                    batch = [uuid.uuid4().hex for _ in range(self.window if count is None else min(self.window, count - new))]
                    new += len(batch)
                    self.pending.extend(batch)
                    await self._round(c, batch)
                    while self.pending:
                        await self._round(c, list(self.pending)[: self.window])
                if not stop.is_set() and (count is None or new < count):
                    # past the deadline before it was told to stop: say so, or a test would
                    # read the silence that follows as the server's
                    raise AssertionError(f"{self.user}: still sending at the {deadline} s deadline "
                                         f"({new} new sent, {len(self.stored)} stored)")
                return
            except (ConnectionError, ConnectionClosed, TimeoutError, asyncio.TimeoutError, OSError):
                for f in c.frames:  # `received` acks of sends whose `stored` never came
                    if f.get("type") == "ack" and f.get("level") == "received":
                        self.received.setdefault(f["ref"], f["msg_id"])
                        self.cut_after_received.add(f["ref"])
                self.cut_after_received |= self._awaiting
                self._awaiting.clear()
                self.reconnects += 1
                resend_all = []  # pending keeps every unconfirmed one
                await asyncio.sleep(0.2)
            finally:
                await c.close()
        raise AssertionError(f"{self.user}: {len(self.pending)} sends still unconfirmed after {deadline}s")


async def audit(url: str, key: bytes, user: str, conversation: str) -> list[Frame]:
    """A conversation's whole history, read by a new device of `user` from seq 0 with explicit
    cursors (§7: they never move the stored ones), page after page."""
    c = Client(url, key, user, f"audit-{uuid.uuid4().hex[:8]}", auto_ack=False, heartbeat=False)
    await c.connect()
    try:
        cursor = {"seq": 0, "event_id": 0}
        messages: list[Frame] = []
        for _ in range(10_000):
            result = await c.sync(cursors={conversation: cursor}, limit=200)
            page = result["conversations"].get(conversation)
            if page is None:
                break
            messages.extend(page["messages"])
            cursor = page["next"]
            if not page["has_more"]:
                break
        return messages
    finally:
        await c.close()


def problems(messages: list[Frame], senders: list[Sender]) -> list[str]:
    """Everything in one conversation's history that breaks §5/§6: seqs 1..n without gaps or
    repeats, in order; one copy per client_msg_id; every stored message there with its msg_id."""
    found: list[str] = []
    seqs = [m["seq"] for m in messages]
    if seqs != list(range(1, len(seqs) + 1)):
        found.append(f"seqs not 1..{len(seqs)} in order: first bad at index "
                     f"{next(i for i, s in enumerate(seqs) if s != i + 1)}")
    by_cmid: dict[tuple[str, str], list[Frame]] = {}
    for m in messages:
        by_cmid.setdefault((m["sender_id"], m["client_msg_id"]), []).append(m)
    for key, copies in by_cmid.items():
        if len(copies) > 1:
            found.append(f"{key} stored {len(copies)} times: seqs {[m['seq'] for m in copies]}")
    for s in senders:
        for cmid, msg_id in s.stored.items():
            copies = by_cmid.get((s.user, cmid))
            if not copies:
                found.append(f"LOST: {s.user} {cmid} acked stored as {msg_id}, not in history")
            elif copies[0]["msg_id"] != msg_id:
                found.append(f"{s.user} {cmid}: acked msg_id {msg_id}, history has {copies[0]['msg_id']}")
        for key in by_cmid:
            if key[0] == s.user and key[1] not in s.sent:
                found.append(f"phantom message {key}")
        if s.conflicts:
            found.append(f"{s.user}: client_msg_ids acked with two msg_ids: {s.conflicts[:3]}")
    return found


async def wait_audit(url: str, key: bytes, senders: list[Sender], *, timeout: float = 20) -> dict[str, list[Frame]]:
    """Audit every sender's conversation until it shows no problem or `timeout` passes (§6:
    a `stored` message gets its seq just after; after a restart the store catches up)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        histories: dict[str, list[Frame]] = {}
        found: list[str] = []
        for conv in sorted({s.conversation for s in senders}):
            group = [s for s in senders if s.conversation == conv]
            histories[conv] = await audit(url, key, group[0].user, conv)
            found += [f"{conv}: {p}" for p in problems(histories[conv], group)]
        if not found:
            return histories
        if loop.time() > end:
            raise AssertionError("history breaks the protocol:\n" + "\n".join(found[:20]))
        await asyncio.sleep(0.5)
