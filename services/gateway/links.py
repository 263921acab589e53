"""The WebSocket layer under the gateway: one Link per client connection, on websockets or picows.

The gateway needs little of a WebSocket library: the request path (token, device id,
options), the text frames a client sends, in order, and a way to write many frames at
once without awaiting anything while the socket keeps up. A Link is that and nothing
more, so the rest of the gateway never sees which library is underneath
(`[gateway] websocket`):

- `websockets`: the reference implementation of RFC 6455 in Python;
- `picows`: the same protocol with its frame parser and writer in Cython. The bare relay
  costs 27 us of server CPU per delivery on it against 54 us on websockets (`python
  bench/relay_anchor.py --compare 10000`, bench/results/2026-12-04).

Both links behave the same to a client: a message over `max_frame_bytes` (one frame, or
fragments together) closes with 1009, invalid UTF-8 in a text message with 1007, a
continuation without a start with 1002; pings are answered; and a client that does not
read stops being read (services/gateway/backpressure.py explains why), so what the
server buffers for it stays bounded by the transport's high-water mark.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Protocol

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

__all__ = ["Link", "LinkClosed", "WebsocketsLink", "PicowsLink", "WEBSOCKET_IMPLEMENTATIONS"]

WEBSOCKET_IMPLEMENTATIONS = ("websockets", "picows")
_CLOSE_TIMEOUT_S = 5.0


class LinkClosed(Exception):
    """The connection is closed (or closing): nothing more can be written to it."""


class Link(Protocol):
    path: str  # the request target, query string included

    @property
    def open(self) -> bool: ...

    def buffered(self) -> int:
        """Bytes written and not yet taken by the kernel."""

    def write_texts(self, frames: list[bytes]) -> None:
        """Write text frames now, in one go, without waiting (the caller checks `buffered`)."""

    async def write_texts_drained(self, frames: list[bytes]) -> None:
        """Write text frames, then wait until the transport takes them (LinkClosed if closed)."""

    async def close(self, code: int, reason: str) -> None:
        """Send a close frame and end the connection (at most a few seconds)."""

    def frames(self) -> AsyncIterator[str | bytes]:
        """The client's messages in order (str: text, bytes: binary), until it closes."""


# -- websockets ---------------------------------------------------------------------------
class WebsocketsLink:
    __slots__ = ("ws", "path")

    def __init__(self, ws: ServerConnection) -> None:
        self.ws = ws
        self.path = ws.request.path if ws.request is not None else "/"

    @property
    def open(self) -> bool:
        return self.ws.protocol.state is State.OPEN

    def buffered(self) -> int:
        return self.ws.transport.get_write_buffer_size()

    def write_texts(self, frames: list[bytes]) -> None:
        # Driving websockets' protocol object directly (no await, so nothing else writes in
        # between) skips send()'s per-frame lock and drain, which have nothing to wait for
        # below the transport's write limit; the socket gets one buffer for all of them.
        protocol = self.ws.protocol
        for frame in frames:
            protocol.send_text(frame)
        self.ws.transport.write(b"".join(protocol.data_to_send()))

    async def write_texts_drained(self, frames: list[bytes]) -> None:
        # send_context() (websockets' documented way to drive the protocol) checks the
        # state and waits for the drain.
        try:
            async with self.ws.send_context():
                self.write_texts(frames)
        except ConnectionClosed as exc:
            raise LinkClosed(str(exc)) from None

    async def close(self, code: int, reason: str) -> None:
        with contextlib.suppress(ConnectionClosed, OSError, asyncio.TimeoutError):
            await asyncio.wait_for(self.ws.close(code, reason), _CLOSE_TIMEOUT_S)

    async def frames(self) -> AsyncIterator[str | bytes]:
        try:
            async for message in self.ws:
                yield message
        except ConnectionClosed:
            return


# -- picows -------------------------------------------------------------------------------
try:  # an optional speed-up: without picows installed, `websocket = "picows"` is refused at start
    from picows import WSCloseCode, WSListener, WSMsgType, WSTransport
except ImportError:  # pragma: no cover - picows is a dependency; this keeps the reason readable
    WSListener = object  # type: ignore[assignment,misc]
    WSMsgType = WSCloseCode = WSTransport = None  # type: ignore[assignment,misc]


class PicowsLink(WSListener):  # type: ignore[misc,valid-type]
    """One connection on picows. picows calls on_ws_frame for every frame as it is parsed;
    the messages go to a bounded inbox that `frames()` empties, and the socket is not read
    while the inbox is full (websockets' max_queue) or the client does not read."""

    def __init__(self, path: str | bytes, *, max_message_bytes: int, on_connected: Callable[[PicowsLink], None],
                 inbox_limit: int = 64) -> None:
        """`path`: the request target as picows gives it (bytes)."""
        super().__init__()
        self.path = path.decode("latin-1") if isinstance(path, bytes) else path
        self._max = max_message_bytes
        self._on_connected = on_connected
        self._inbox_limit = inbox_limit
        self._inbox: deque[str | bytes] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._fragments: list[bytes] | None = None
        self._fragments_text = False
        self._fragments_size = 0
        self._transport: WSTransport | None = None
        self._closing = False  # a close frame was sent or received
        self._ended = False  # the TCP connection is gone
        self._inbox_full = False
        self._client_not_reading = False
        self._drained = asyncio.Event()
        self._drained.set()
        self._gone = asyncio.Event()

    # picows callbacks ------------------------------------------------------------------
    def on_ws_connected(self, transport: WSTransport) -> None:
        self._transport = transport
        self._on_connected(self)

    def on_ws_frame(self, transport: WSTransport, frame) -> None:
        kind = frame.msg_type
        if kind is WSMsgType.TEXT or kind is WSMsgType.BINARY:
            if self._fragments is not None:
                return self._fail(WSCloseCode.PROTOCOL_ERROR, "a new message before the last one ended")
            if frame.fin:
                if frame.payload_size > self._max:
                    return self._fail(WSCloseCode.MESSAGE_TOO_BIG, "message too big")
                self._deliver(kind is WSMsgType.TEXT, frame.get_payload_as_bytes())
            else:
                self._fragments, self._fragments_text, self._fragments_size = [], kind is WSMsgType.TEXT, 0
                self._add_fragment(frame)
        elif kind is WSMsgType.CONTINUATION:
            if self._fragments is None:
                return self._fail(WSCloseCode.PROTOCOL_ERROR, "a continuation frame without a message")
            self._add_fragment(frame)
        elif kind is WSMsgType.PING:
            transport.send_pong(frame.get_payload_as_bytes())
        elif kind is WSMsgType.CLOSE:
            code = frame.get_close_code()
            self._closing = True
            if not transport.is_close_frame_sent:
                transport.send_close(code if code not in (WSCloseCode.NO_INFO, 1005) else WSCloseCode.OK)
            transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self._closing = self._ended = True
        self._drained.set()
        self._gone.set()
        self._wake()

    def pause_writing(self) -> None:
        self._drained.clear()
        self._client_not_reading = True
        self._reading(False)

    def resume_writing(self) -> None:
        self._drained.set()
        self._client_not_reading = False
        self._reading(not self._inbox_full)

    # inbound ---------------------------------------------------------------------------
    def _add_fragment(self, frame) -> None:
        assert self._fragments is not None
        self._fragments_size += frame.payload_size
        if self._fragments_size > self._max:
            self._fragments = None
            return self._fail(WSCloseCode.MESSAGE_TOO_BIG, "message too big")
        self._fragments.append(frame.get_payload_as_bytes())
        if frame.fin:
            payload = b"".join(self._fragments)
            self._fragments = None
            self._deliver(self._fragments_text, payload)

    def _deliver(self, text: bool, payload: bytes) -> None:
        if self._closing:
            return
        if text:
            try:
                message: str | bytes = payload.decode("utf-8")
            except UnicodeDecodeError:
                return self._fail(WSCloseCode.INVALID_TEXT, "invalid UTF-8 in a text message")
        else:
            message = payload
        self._inbox.append(message)
        if len(self._inbox) >= self._inbox_limit and not self._inbox_full:
            self._inbox_full = True
            self._reading(False)
        self._wake()

    def _fail(self, code, reason: str) -> None:
        self._inbox.clear()
        self._closing = True
        transport = self._transport
        if transport is not None:
            transport.send_close(code, reason.encode())
            transport.disconnect()
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _reading(self, on: bool) -> None:
        transport = self._transport
        if transport is None or self._ended:
            return
        with contextlib.suppress(AttributeError, RuntimeError):  # closing
            if on:
                transport.underlying_transport.resume_reading()
            else:
                transport.underlying_transport.pause_reading()

    async def frames(self) -> AsyncIterator[str | bytes]:
        inbox = self._inbox
        while True:
            while inbox:
                message = inbox.popleft()
                if self._inbox_full and len(inbox) < self._inbox_limit // 2:
                    self._inbox_full = False
                    self._reading(not self._client_not_reading)
                yield message
            if self._closing:
                return
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    # outbound --------------------------------------------------------------------------
    @property
    def open(self) -> bool:
        return self._transport is not None and not self._closing

    def buffered(self) -> int:
        transport = self._transport
        return transport.underlying_transport.get_write_buffer_size() if transport is not None else 0

    def write_texts(self, frames: list[bytes]) -> None:
        transport = self._transport
        if transport is None or self._closing:
            raise LinkClosed("the connection is closed")
        send, text = transport.send, WSMsgType.TEXT
        for frame in frames:
            send(text, frame)

    async def write_texts_drained(self, frames: list[bytes]) -> None:
        self.write_texts(frames)
        await self._drained.wait()
        if self._ended:
            raise LinkClosed("the connection is closed")

    async def close(self, code: int, reason: str) -> None:
        transport = self._transport
        if transport is None or self._ended:
            return
        if not transport.is_close_frame_sent:
            transport.send_close(code, reason.encode()[:120])
        self._closing = True
        self._wake()
        # The client answers with its own close frame (on_ws_frame then disconnects); one
        # that never does is cut off.
        try:
            await asyncio.wait_for(self._gone.wait(), _CLOSE_TIMEOUT_S)
        except asyncio.TimeoutError:
            transport.disconnect(graceful=False)
