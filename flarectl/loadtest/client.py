"""A simulated device: one real WebSocket client that behaves like a Flare app.

It acks every message it gets (in seq order: a message past a seq gap waits until sync
fills the gap), syncs after every (re)connect with the cursors it holds, syncs again when
it sees a gap, resends its unconfirmed sends with the same client_msg_id after a reconnect,
and times every send against the acks and arrivals it produces.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit, urlunsplit

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from .link import CLOSE_UNAUTHORIZED, ConnectFailed, DeviceLink, connect_device, refused, split_hello
from .stats import WorkerStats
from .verifier import SYNC_CONNECT, SYNC_FINAL, SYNC_GAP, DeviceLedger

__all__ = ["RunContext", "SimulatedDevice", "ConnectFailed", "PendingSend", "device_url"]

GAP_SYNC_INTERVAL_S = 0.5


def device_url(gateway: str, *, token: str, device_id: str, device_type: str = "mobile", compact: bool = False) -> str:
    parts = urlsplit(gateway)
    fields = {"token": token, "device_id": device_id, "device_type": device_type}
    if compact:
        fields["compact"] = "1"
    query = urlencode(fields)
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", f"{parts.query}&{query}" if parts.query else query, ""))


async def open_device(url: str, *, timeout: float) -> tuple[ClientConnection, dict, list[dict]]:
    """Connect and read `hello`; ConnectFailed (auth=True for a refused token) otherwise.
    On websockets: the engine's set-up connections (the devices use `link.connect_device`).
    Also returns the frames that came in one `batch` with the hello (a compact connection's
    hello is the first inner frame when others waited with it: docs/protocol.md §12)."""
    try:
        ws = await connect(url, open_timeout=timeout, close_timeout=2, ping_interval=None,
                           compression=None, max_size=2**22, max_queue=1024)
    except InvalidStatus as exc:
        status = exc.response.status_code
        raise ConnectFailed(f"gateway answered HTTP {status}", auth=status in (401, 403)) from exc
    except (OSError, TimeoutError, InvalidHandshake) as exc:
        raise ConnectFailed(f"cannot connect: {exc}") from exc
    try:
        async with asyncio.timeout(timeout):
            first = orjson.loads(await ws.recv())
    except ConnectionClosed as exc:
        code = exc.rcvd.code if exc.rcvd else None
        raise ConnectFailed(f"closed before hello (code {code})", auth=code == CLOSE_UNAUTHORIZED, code=code) from exc
    except (TimeoutError, OSError) as exc:
        await ws.close()
        raise ConnectFailed("no hello from the gateway") from exc
    first, after_hello = split_hello(first)
    if first.get("type") != "hello":
        try:  # the gateway closes right after the error frame; its close code says more
            async with asyncio.timeout(1):
                await ws.wait_closed()
        except TimeoutError:
            await ws.close()
        raise refused(first, ws.close_code)
    return ws, first, after_hello


@dataclass(slots=True)
class PendingSend:
    conversation_id: str
    sent_at: float  # perf_counter
    resent: bool = False
    received: bool = False


@dataclass(slots=True)
class RunContext:
    """What the devices of one worker share."""

    gateway: str
    stats: WorkerStats
    connect_timeout: float
    connect_gate: asyncio.Semaphore
    gap_sync: bool = True
    body_padding: str = ""
    compact: bool = False
    stored: dict[int, str] = field(default_factory=dict)  # msg_id -> conversation, for our sends
    seq_of: dict[int, tuple[str, int]] = field(default_factory=dict)  # msg_id -> (conversation, seq), anything seen
    seq_conflicts: int = 0
    last_frame_at: float = 0.0  # monotonic; for "quiet" detection
    stopping: bool = False
    next_id: int = 0

    def note_message(self, msg_id: int, conversation_id: str, seq: int) -> None:
        known = self.seq_of.get(msg_id)
        if known is None:
            self.seq_of[msg_id] = (sys.intern(conversation_id), seq)
        elif known != (conversation_id, seq):
            self.seq_conflicts += 1


class SimulatedDevice:
    def __init__(self, ctx: RunContext, *, user_id: str, device_id: str, token: str, id_prefix: str) -> None:
        self.ctx = ctx
        self.user_id = user_id
        self.device_id = device_id
        self.key = f"{user_id}/{device_id}"
        self.url = device_url(ctx.gateway, token=token, device_id=device_id, compact=ctx.compact)
        self._acks_due: dict[str, tuple[int, int]] = {}  # compact: conversation -> highest (seq, msg_id) this tick
        self._acks_scheduled = False
        self.ledger = DeviceLedger()
        self.pending: dict[str, PendingSend] = {}
        self.sent_times: dict[str, float] = {}  # stored sends, for the delivered acks
        self.id_prefix = id_prefix
        self.link: DeviceLink | None = None
        self.connected = asyncio.Event()
        self.sync_idle = asyncio.Event()
        self.sync_idle.set()
        self.sync_kind: str | None = None
        self.final_synced = False  # a final sync was answered in full (every page)
        self.last_gap_sync = 0.0
        self.event_ids: dict[str, int] = {}
        self.keep_connected = False
        self.down_until = 0.0
        self.ever_connected = False
        self.task: asyncio.Task | None = None
        self._closing_by_us = False

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def up(self) -> bool:
        """Connected, and not on its way down (a churn bounce closes after what is queued)."""
        return self.connected.is_set() and not self._closing_by_us

    def start(self) -> None:
        self.keep_connected = True
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._maintain(), name=f"device {self.key}")

    async def stop(self) -> None:
        self.keep_connected = False
        self._close_soon()
        if self.task is not None:
            try:
                async with asyncio.timeout(3):
                    await asyncio.shield(self.task)
            except (TimeoutError, asyncio.CancelledError):
                self.task.cancel()

    def bounce(self, downtime: float) -> bool:
        """Churn: close this connection gracefully and come back after `downtime` seconds."""
        if not self.connected.is_set():
            return False
        self.down_until = time.monotonic() + downtime
        self._close_soon()
        return True

    def _close_soon(self) -> None:
        if self.link is not None:
            self._closing_by_us = True
            self.link.close_soon()  # what is queued goes first

    async def _maintain(self) -> None:
        stats = self.ctx.stats.counters
        backoff = 0.1
        while self.keep_connected and not self.ctx.stopping:
            wait = self.down_until - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
                if not self.keep_connected:
                    break
            try:
                async with self.ctx.connect_gate:
                    link, _hello, after_hello = await connect_device(self.url, timeout=self.ctx.connect_timeout)
            except ConnectFailed as exc:
                stats["connect_failures"] += 1
                if exc.auth:
                    stats["auth_failures"] += 1
                await asyncio.sleep(backoff * (0.5 + random.random()))
                backoff = min(backoff * 2, 2.0)
                continue
            backoff = 0.1
            stats["connects"] += 1
            if self.ever_connected:
                stats["reconnects"] += 1
            self.ever_connected = True
            code = await self._serve(link, after_hello)
            if not self._closing_by_us:
                stats["disconnects"] += 1
                self.ctx.stats.close_codes[str(code)] += 1
            self._closing_by_us = False

    async def _serve(self, link: DeviceLink, after_hello: list[dict]) -> int | None:
        self.link = link
        self.ledger.new_connection()
        self.sync_idle.set()
        self.sync_kind = None
        self.connected.set()
        self.sync(SYNC_CONNECT)
        for client_msg_id, pending in self.pending.items():
            pending.resent = True
            self.ctx.stats.counters["resent"] += 1
            self._enqueue({"type": "send", "client_msg_id": client_msg_id,
                           "conversation_id": pending.conversation_id, "body": self._body()})
        for frame in after_hello:  # live pushes that shared the hello's batch
            self._on_frame(frame)
        link.attach(self._on_frame)  # from here on picows hands each frame to _on_frame
        try:
            code = await asyncio.shield(link.closed)
        finally:
            self.connected.clear()
            self.link = None
            self.sync_idle.set()
            link.abort()  # cancelled (stop): no connection outlives its device
        if link.error is not None:
            raise link.error
        return code

    def _enqueue(self, frame: dict) -> bool:
        link = self.link
        return link is not None and link.send(orjson.dumps(frame))

    # -- what the app does ---------------------------------------------------------------

    def _body(self) -> str:
        return f"{time.time():.6f}{self.ctx.body_padding}"

    def send_message(self, conversation_id: str) -> bool:
        if self.link is None or self._closing_by_us:
            return False
        self.ctx.next_id += 1
        client_msg_id = f"{self.id_prefix}{self.ctx.next_id}"
        self.pending[client_msg_id] = PendingSend(conversation_id, time.perf_counter())
        self._enqueue({"type": "send", "client_msg_id": client_msg_id, "conversation_id": conversation_id,
                       "body": self._body()})
        self.ctx.stats.counters["sent"] += 1
        return True

    def sync(self, kind: str) -> bool:
        if self.link is None:
            return False
        self.sync_kind = kind
        self.sync_idle.clear()
        cursors = {conv: {"seq": seq, "event_id": self.event_ids.get(conv, 0)}
                   for conv, seq in self.ledger.sync_request().items()}
        self.ctx.stats.counters["syncs"] += 1
        return self._enqueue({"type": "sync", "id": f"sync-{kind}", "cursors": cursors})

    async def final_sync(self) -> None:
        """Sync until one final sync is answered in full, on a connection that is up: a
        device still coming back from churn reconnects first, and a connection lost in the
        middle of the sync means syncing again on the next one."""
        while True:
            while not (self.up and self.sync_idle.is_set()):
                await asyncio.sleep(0.05)
            self.final_synced = False
            if self.sync(SYNC_FINAL):
                await self.sync_idle.wait()
                if self.final_synced:
                    return
            await asyncio.sleep(0.05)  # refused (an error frame) or cut off: again

    def _resend(self, client_msg_id: str) -> None:
        """Resend one unconfirmed send on this connection (if down, the reconnect resends it)."""
        pending = self.pending.get(client_msg_id)
        if pending is not None and not self._closing_by_us:
            self._enqueue({"type": "send", "client_msg_id": client_msg_id,
                           "conversation_id": pending.conversation_id, "body": self._body()})

    def heartbeat(self) -> None:
        self._enqueue({"type": "heartbeat"})

    # -- what the server says ------------------------------------------------------------

    def _on_frame(self, frame: dict) -> None:
        kind = frame.get("type")
        if kind == "batch":
            for inner in frame.get("frames") or ():
                self._on_frame(inner)
            return
        if kind == "message":
            self._on_message(frame)
        elif kind == "ack":
            self._on_ack(frame)
        elif kind == "sync_result":
            self._on_sync_result(frame)
        elif kind == "error":
            self._on_error(frame)

    def _ack(self, acks: list[tuple[str, int, int]]) -> None:
        if not self.ctx.compact:
            for conversation_id, seq, msg_id in acks:
                self._enqueue({"type": "ack", "conversation_id": conversation_id, "seq": seq, "msg_id": str(msg_id)})
            return
        # Cumulative: an ack of seq N proves every frame before it on this connection, so
        # one ack per conversation per tick, of the highest seq, stands for all of them.
        due = self._acks_due
        for conversation_id, seq, msg_id in acks:
            if seq > due.get(conversation_id, (0, 0))[0]:
                due[conversation_id] = (seq, msg_id)
        if due and not self._acks_scheduled:
            self._acks_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_acks)

    def _flush_acks(self) -> None:
        self._acks_scheduled = False
        due, self._acks_due = self._acks_due, {}
        for conversation_id, (seq, msg_id) in due.items():
            self._enqueue({"type": "ack", "conversation_id": conversation_id, "seq": seq, "msg_id": str(msg_id)})

    def _on_message(self, frame: dict) -> None:
        now = time.time()
        self.ctx.last_frame_at = time.monotonic()
        conversation_id, seq, msg_id = frame["conversation_id"], int(frame["seq"]), int(frame["msg_id"])
        self.ctx.note_message(msg_id, conversation_id, seq)
        self.ctx.stats.counters["live_messages"] += 1
        before = self.ledger.live
        acks, gap = self.ledger.on_live(conversation_id, seq, msg_id)
        if self.ledger.live > before:
            sent_at = _sent_at(frame.get("body"))
            if sent_at is not None:
                self.ctx.stats.latencies["send_arrival"].record((now - sent_at) * 1e6)
        self._ack(acks)
        if gap and self.ctx.gap_sync and self.sync_idle.is_set():
            if time.monotonic() - self.last_gap_sync >= GAP_SYNC_INTERVAL_S:
                self.last_gap_sync = time.monotonic()
                self.sync(SYNC_GAP)

    def _on_sync_result(self, frame: dict) -> None:
        self.ctx.last_frame_at = time.monotonic()
        kind = self.sync_kind or SYNC_FINAL
        more = False
        for conversation_id, page in (frame.get("conversations") or {}).items():
            pairs = []
            for message in page.get("messages") or ():
                msg_id, seq = int(message["msg_id"]), int(message["seq"])
                self.ctx.note_message(msg_id, conversation_id, seq)
                pairs.append((seq, msg_id))
            for event in page.get("events") or ():
                self.event_ids[conversation_id] = max(self.event_ids.get(conversation_id, 0), int(event.get("event_id", 0)))
            self.ctx.stats.counters["sync_messages"] += len(pairs)
            self._ack(self.ledger.on_sync(conversation_id, pairs, kind=kind))
            more = more or bool(page.get("has_more"))
        if more:
            self.sync(kind)
        else:
            self.final_synced = kind == SYNC_FINAL
            self.sync_kind = None
            self.sync_idle.set()

    def _on_ack(self, frame: dict) -> None:
        level = frame.get("level")
        client_msg_id = frame.get("client_msg_id")
        pending = self.pending.get(client_msg_id) if client_msg_id else None
        counters, latencies = self.ctx.stats.counters, self.ctx.stats.latencies
        if level == "stored" and pending is not None and not pending.received:
            # compact: a `stored` that replaced its `received` stands for both
            counters["acked_received"] += 1
            pending.received = True
            if not pending.resent:
                latencies["send_received"].record((time.perf_counter() - pending.sent_at) * 1e6)
        if level == "received":
            counters["acked_received"] += 1
            if pending is not None and not pending.resent and not pending.received:
                pending.received = True
                latencies["send_received"].record((time.perf_counter() - pending.sent_at) * 1e6)
        elif level == "stored":
            counters["acked_stored"] += 1
            if frame.get("duplicate"):
                counters["stored_duplicate_flag"] += 1
            if pending is None:
                return
            del self.pending[client_msg_id]
            self.ctx.stored[int(frame["msg_id"])] = sys.intern(frame.get("conversation_id") or pending.conversation_id)
            if not pending.resent:
                latencies["send_stored"].record((time.perf_counter() - pending.sent_at) * 1e6)
                self.sent_times[client_msg_id] = pending.sent_at
        elif level == "delivered":
            counters["delivered_acks"] += 1
            sent_at = self.sent_times.get(client_msg_id) if client_msg_id else None
            if sent_at is not None and frame.get("user_id") != self.user_id:
                latencies["send_delivered"].record((time.perf_counter() - sent_at) * 1e6)

    def _on_error(self, frame: dict) -> None:
        code = str(frame.get("code"))
        self.ctx.stats.error_frames[code] += 1
        ref = frame.get("ref")
        pending = self.pending.get(ref) if isinstance(ref, str) else None
        if pending is not None and code == "busy" and pending.resent:
            # A resend after a reconnect: its first attempt may be stored already, its
            # `stored` lost with the old connection, and `busy` speaks for this attempt only.
            # Giving up would leave a stored message the run never counts; so resend it
            # after retry_after with the same client_msg_id, as docs/protocol.md §12 says.
            self.ctx.stats.counters["shed_retried"] += 1
            retry_after = (frame.get("details") or {}).get("retry_after")
            delay = min(5.0, max(0.05, retry_after)) if isinstance(retry_after, (int, float)) else 0.25
            asyncio.get_running_loop().call_later(delay, self._resend, ref)
        elif pending is not None:
            del self.pending[ref]
            # `busy`: the gateway shed this send under overload; not stored, so not lost.
            self.ctx.stats.counters["shed" if code == "busy" else "send_failed"] += 1
        elif isinstance(ref, str) and ref.startswith("sync-"):
            self.sync_kind = None
            self.sync_idle.set()


def _sent_at(body: object) -> float | None:
    if not isinstance(body, str):
        return None
    try:
        return float(body[:17])
    except ValueError:
        return None
