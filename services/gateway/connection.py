"""One client connection: a bounded outbound queue, flushed at the end of each tick.

The queue is what keeps one slow client from stalling everyone: pushes never await the
socket, and a connection whose queue overflows is closed (4008) — its messages are stored,
so it catches up with `sync` after reconnecting. It overflows at `max_queue` frames, at
`max_queue_bytes` bytes, or when every connection of the gateway together holds more than
their shared budget (`flare_memory_bytes{structure="gateway_outbound"}`). Every frame taken
off the queue gives back exactly the bytes it added when pushed.

A client that connected with `compact=1` (docs/protocol.md, "Compact frames") is sent
fewer frames for the same events: when several frames wait in its queue the writer sends
them as one `batch` frame, and a `received` ack still waiting when its `stored` is ready
is replaced by the `stored` ack (which then stands for both). The frames are never parsed
for this: a batch is the queued bytes joined inside a fixed envelope.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

from services.common.bounds import ByteBudget
from services.common.ids import DeviceId, UserId
from services.common.model import DeviceType

from .held import HeldFrames
from .links import Link, LinkClosed

__all__ = ["ClientConnection", "Replaceable", "TickFlusher", "CLOSE_IDLE", "CLOSE_UNAUTHORIZED", "CLOSE_BAD_PARAMETERS",
           "CLOSE_REPLACED", "CLOSE_SLOW"]

CLOSE_IDLE = 4000
CLOSE_UNAUTHORIZED = 4001
CLOSE_BAD_PARAMETERS = 4002
CLOSE_REPLACED = 4003
CLOSE_SLOW = 4008

_BATCH_OPEN = b'{"type":"batch","frames":['
_BATCH_CLOSE = b"]}"
_BATCH_MAX_FRAMES = 256
_FAST_WRITE_LIMIT = 32 * 1024  # websockets' own write_limit: below it, send() would not wait either


class Replaceable:
    """A queued frame that may still be swapped for another until the writer takes it."""

    __slots__ = ("frame", "taken", "size")

    def __init__(self, frame: bytes) -> None:
        self.frame = frame
        self.taken = False
        # Bytes it was accounted for when pushed: a replacement may be longer or shorter,
        # and the queue gives back what it took, not what it sends.
        self.size = len(frame)


class TickFlusher:
    """The connections with frames to write, all written by one callback at the end of the
    tick. A gateway pushing a batch of deliveries to many connections schedules one loop
    callback instead of one per connection (py-spy: the per-connection `call_soon` was ~5 %
    of a gateway worker at 1,800 msg/s)."""

    __slots__ = ("_due", "_scheduled")

    def __init__(self) -> None:
        self._due: list[ClientConnection] = []
        self._scheduled = False

    def add(self, conn: ClientConnection) -> None:
        self._due.append(conn)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._run)

    def _run(self) -> None:
        self._scheduled = False
        due, self._due = self._due, []
        for conn in due:
            try:
                conn._flush()
            except Exception as exc:  # noqa: BLE001 - one broken connection never stalls the others
                asyncio.get_running_loop().call_exception_handler(
                    {"message": f"flushing connection {conn.connection_id} failed", "exception": exc})


class ClientConnection:
    __slots__ = (
        "link", "user_id", "device_id", "device_type", "connection_id", "max_queue",
        "last_seen", "_queue", "_started", "_flush_scheduled", "_closed", "_writer", "close_reason", "_pushed_seq",
        "held", "compact", "max_batch_bytes", "max_queue_bytes", "_queued_bytes", "_budget", "_flusher",
    )

    def __init__(self, link: Link, *, user_id: UserId, device_id: DeviceId, device_type: DeviceType,
                 connection_id: str, max_queue: int, compact: bool = False, max_batch_bytes: int = 64 * 1024,
                 max_queue_bytes: int = 1 << 20, budget: ByteBudget | None = None,
                 flusher: TickFlusher | None = None) -> None:
        self.link = link
        self.user_id = user_id
        self.device_id = device_id
        self.device_type = device_type
        self.connection_id = connection_id
        self.max_queue = max_queue
        self.max_queue_bytes = max_queue_bytes
        self._queued_bytes = 0
        self._budget = budget if budget is not None else ByteBudget("gateway_outbound", 1 << 62)
        self.last_seen = asyncio.get_running_loop().time()
        self._queue: deque[bytes | Replaceable] = deque()
        self._started = False
        self._flush_scheduled = False
        self._closed = False
        self._writer: asyncio.Task | None = None
        self.close_reason: str | None = None
        self._pushed_seq: dict[str, int] = {}  # conversation -> highest seq pushed here
        self.held = HeldFrames()  # what was queued here, to turn acks into held ranges
        self.compact = compact
        self.max_batch_bytes = max_batch_bytes
        self._flusher = flusher if flusher is not None else TickFlusher()

    @property
    def closed(self) -> bool:
        return self._closed

    def start(self) -> None:
        """Frames pushed from now on are written (at the end of each tick, or by a task
        while the client reads slowly)."""
        self._started = True
        if self._queue:
            self._schedule_flush()

    def push(self, frame: bytes | Replaceable, conversation_id: str = "", seq: int = 0) -> bool:
        """Queue a frame; False if the connection is closed or just overflowed.

        `conversation_id` and `seq` say which message the frame is (seq 0: not a message;
        services/delivery/seam.py), so it is never parsed here. A message whose
        (conversation, seq) this connection was already sent is dropped: deliveries are
        at least once (a store batch re-read around a consumer-group rebalance is
        delivered again), but a connection gets each seq once, in order. A lower seq
        arriving late leaves a gap the device fills with `sync`."""
        if self._closed:
            return False
        if seq and not self._first_push(conversation_id, seq):
            return True
        if type(frame) is bytes:
            size = len(frame)
        else:
            size = frame.size = len(frame.frame)
        if self._queue and (len(self._queue) >= self.max_queue or self._queued_bytes + size > self.max_queue_bytes
                            or self._budget.used + size > self._budget.limit):
            self._budget.evictions += len(self._queue)
            self.close_soon(CLOSE_SLOW, "slow_consumer: outbound queue overflowed; reconnect and sync")
            return False
        self._queue.append(frame)
        self._queued_bytes += size
        self._budget.used += size
        if self._started and self._writer is None:
            self._schedule_flush()
        return True


    def _first_push(self, conversation_id: str, seq: int) -> bool:
        if seq <= self._pushed_seq.get(conversation_id, 0):
            return False
        self._pushed_seq[conversation_id] = seq
        self.held.live(conversation_id, seq)
        return True

    def close_soon(self, code: int, reason: str, *, error_frame: bytes | None = None) -> None:
        """Stop accepting frames, flush `error_frame` if given, then close with `code`."""
        if self._closed:
            return
        self._closed = True
        self.close_reason = reason
        self._budget.used -= self._queued_bytes
        self._queued_bytes = 0
        self._queue.clear()
        asyncio.get_running_loop().create_task(self._close(code, reason, error_frame))

    async def _close(self, code: int, reason: str, error_frame: bytes | None) -> None:
        if error_frame is not None:
            with contextlib.suppress(LinkClosed, OSError, asyncio.TimeoutError):
                await asyncio.wait_for(self.link.write_texts_drained([error_frame]), 2)
        await self.link.close(code, reason[:120])

    def _flush(self) -> None:
        """Write what is queued, at the end of the tick it was pushed in (no task per
        connection: an idle connection costs no coroutine, a busy one no task switch)."""
        self._flush_scheduled = False
        queue, link = self._queue, self.link
        if self._closed or not queue or self._writer is not None:
            return
        if not link.open or link.buffered() >= _FAST_WRITE_LIMIT:
            # Closing, or the client reads slowly: a task waits for the drain.
            self._writer = asyncio.get_running_loop().create_task(
                self._write_slowly(), name=f"ws-writer-{self.connection_id}")
            return
        # Everything waiting, written at once: at full rate this turns a write syscall per
        # frame into one per tick, which is most of the gateway's CPU.
        try:
            link.write_texts(self._take_batch())
        except LinkClosed:
            self._closed = True
            return
        if queue:
            self._schedule_flush()

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._flusher.add(self)

    def _take_batch(self) -> list[bytes]:
        """Up to _BATCH_MAX_FRAMES frames off the queue, their pushed bytes given back."""
        queue = self._queue
        batch: list[bytes] = []
        size = 0
        for _ in range(min(len(queue), _BATCH_MAX_FRAMES)):
            item = queue.popleft()
            if type(item) is bytes:
                size += len(item)
                batch.append(item)
            else:
                size += item.size
                item.taken = True
                batch.append(item.frame)
        self._queued_bytes -= size
        self._budget.used -= size
        if self.compact and len(batch) > 1:
            batch = _envelopes(batch, self.max_batch_bytes)
        return batch

    async def _write_slowly(self) -> None:
        """Write and wait for each drain; back to tick flushes once the queue is empty."""
        link = self.link
        try:
            while self._queue and not self._closed:
                await link.write_texts_drained(self._take_batch())
        except LinkClosed:
            self._closed = True
        except asyncio.CancelledError:
            pass
        finally:
            self._writer = None

    async def stop(self) -> None:
        self._closed = True
        self._budget.used -= self._queued_bytes
        self._queued_bytes = 0
        self._queue.clear()
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer


def _envelopes(frames: list[bytes], max_bytes: int) -> list[bytes]:
    """Join frames into `batch` frames of at most `max_bytes` each (a bigger frame goes alone)."""
    out: list[bytes] = []
    run: list[bytes] = []
    size = 0
    for frame in frames:
        if run and size + len(frame) + 1 > max_bytes:
            out.append(run[0] if len(run) == 1 else _BATCH_OPEN + b",".join(run) + _BATCH_CLOSE)
            run, size = [], 0
        run.append(frame)
        size += len(frame) + 1
    if run:
        out.append(run[0] if len(run) == 1 else _BATCH_OPEN + b",".join(run) + _BATCH_CLOSE)
    return out
