"""One client connection: a bounded outbound queue drained by its own writer task.

The queue is what keeps one slow client from stalling everyone: pushes never await the
socket, and a connection whose queue overflows is closed (4008) — its messages are stored,
so it catches up with `sync` after reconnecting. It overflows at `max_queue` frames, at
`max_queue_bytes` bytes, or when every connection of the gateway together holds more than
their shared budget (`flare_memory_bytes{structure="gateway_outbound"}`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from services.common.bounds import ByteBudget
from services.common.ids import DeviceId, UserId
from services.common.model import DeviceType

from .held import HeldFrames

__all__ = ["ClientConnection", "CLOSE_IDLE", "CLOSE_UNAUTHORIZED", "CLOSE_BAD_PARAMETERS", "CLOSE_REPLACED", "CLOSE_SLOW"]

CLOSE_IDLE = 4000
CLOSE_UNAUTHORIZED = 4001
CLOSE_BAD_PARAMETERS = 4002
CLOSE_REPLACED = 4003
CLOSE_SLOW = 4008


class ClientConnection:
    __slots__ = (
        "ws", "user_id", "device_id", "device_type", "connection_id", "max_queue",
        "last_seen", "_queue", "_wakeup", "_closed", "_writer", "close_reason", "_pushed_seq", "held",
        "max_queue_bytes", "_queued_bytes", "_budget",
    )

    def __init__(self, ws: ServerConnection, *, user_id: UserId, device_id: DeviceId, device_type: DeviceType,
                 connection_id: str, max_queue: int, max_queue_bytes: int = 1 << 20,
                 budget: ByteBudget | None = None) -> None:
        self.ws = ws
        self.user_id = user_id
        self.device_id = device_id
        self.device_type = device_type
        self.connection_id = connection_id
        self.max_queue = max_queue
        self.max_queue_bytes = max_queue_bytes
        self._queued_bytes = 0
        self._budget = budget if budget is not None else ByteBudget("gateway_outbound", 1 << 62)
        self.last_seen = asyncio.get_running_loop().time()
        self._queue: deque[bytes] = deque()
        self._wakeup = asyncio.Event()
        self._closed = False
        self._writer: asyncio.Task | None = None
        self.close_reason: str | None = None
        self._pushed_seq: dict[str, int] = {}  # conversation -> highest seq pushed here
        self.held = HeldFrames()  # what was queued here, to turn acks into held ranges

    @property
    def closed(self) -> bool:
        return self._closed

    def start(self) -> None:
        self._writer = asyncio.create_task(self._write_forever(), name=f"ws-writer-{self.connection_id}")

    def push(self, frame: bytes, conversation_id: str = "", seq: int = 0) -> bool:
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
        size = len(frame)
        if self._queue and (len(self._queue) >= self.max_queue or self._queued_bytes + size > self.max_queue_bytes
                            or self._budget.used + size > self._budget.limit):
            self._budget.evictions += len(self._queue)
            self.close_soon(CLOSE_SLOW, "slow_consumer: outbound queue overflowed; reconnect and sync")
            return False
        self._queue.append(frame)
        self._queued_bytes += size
        self._budget.used += size
        self._wakeup.set()
        return True

    def _took(self, frames: list[bytes] | bytes) -> None:
        size = len(frames) if isinstance(frames, bytes) else sum(len(f) for f in frames)
        self._queued_bytes -= size
        self._budget.used -= size

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
        with contextlib.suppress(ConnectionClosed, OSError, asyncio.TimeoutError):
            if error_frame is not None:
                await asyncio.wait_for(self.ws.send(error_frame, text=True), 2)
            await asyncio.wait_for(self.ws.close(code, reason[:120]), 5)

    async def _write_forever(self) -> None:
        queue, ws = self._queue, self.ws
        try:
            while not self._closed:
                if not queue:
                    self._wakeup.clear()
                    await self._wakeup.wait()
                    continue
                if len(queue) == 1:
                    frame = queue.popleft()
                    self._took(frame)
                    await ws.send(frame, text=True)
                    continue
                # Several frames waiting: frame them all and hand the socket one buffer. At
                # full rate this turns a write syscall per frame into one per wakeup, which is
                # most of the gateway's CPU. send_context() is websockets' documented way to
                # drive its protocol object directly; it checks the state and applies
                # flow control (drain) on exit.
                batch = [queue.popleft() for _ in range(min(len(queue), 256))]
                self._took(batch)
                async with ws.send_context():
                    protocol = ws.protocol
                    for frame in batch:
                        protocol.send_text(frame)
                    data = protocol.data_to_send()
                    ws.transport.write(b"".join(data))
        except ConnectionClosed:
            self._closed = True
        except asyncio.CancelledError:
            pass

    async def stop(self) -> None:
        self._closed = True
        self._budget.used -= self._queued_bytes
        self._queued_bytes = 0
        self._queue.clear()
        self._wakeup.set()
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
