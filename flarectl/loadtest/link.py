"""A simulated device's WebSocket, on picows: frames are handled as they are parsed.

The load tester shares the machine with the server it measures, so its own cost per frame
is part of every figure on a 2-core box. On websockets' asyncio client it was 58 % of a core
at 900 msg/s: the sans-I/O parser's generators (13 % of its samples), the message assembler
and `recv()` (8 %), a writer task and an `asyncio.Queue` per device (10 %), and a context
manager per write. Here picows (Cython) parses, and each text frame goes straight to the
device's handler from picows' callback; what the device sends in one loop tick is written at
the end of that tick, from the loop itself, with no task in between.

Only the devices use this; the engine's own few set-up connections stay on websockets.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import orjson
from picows import WSCloseCode, WSError, WSInvalidStatusError, WSListener, WSMsgType, WSTransport, ws_connect

__all__ = ["DeviceLink", "ConnectFailed", "connect_device", "refused", "split_hello"]

CLOSE_UNAUTHORIZED = 4001
_ABNORMAL = 1006  # no close frame came: what websockets (and RFC 6455) call it


class ConnectFailed(Exception):
    def __init__(self, message: str, *, auth: bool = False, code: int | None = None) -> None:
        super().__init__(message)
        self.auth = auth
        self.code = code


class DeviceLink(WSListener):
    """One connection. Until `attach`, frames are kept (the hello comes first); after it,
    each parsed frame is handed to the device at once."""

    def __init__(self) -> None:
        super().__init__()
        self.transport: WSTransport | None = None
        self.close_code: int | None = None
        self.closed = asyncio.get_running_loop().create_future()
        self._early: list[dict] = []
        self._first = asyncio.get_running_loop().create_future()
        self._handler: Callable[[dict], None] | None = None
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self._closing = False
        self._partial: list[bytes] | None = None  # a fragmented message's frames so far
        self.error: BaseException | None = None  # the device's handler failed: the link was cut

    # -- picows' callbacks -----------------------------------------------------------
    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: WSTransport, frame) -> None:
        kind = frame.msg_type
        if kind is WSMsgType.TEXT or kind is WSMsgType.BINARY:
            if not frame.fin:
                self._partial = [frame.get_payload_as_bytes()]
                return
            self._message(frame.get_payload_as_memoryview())
        elif kind is WSMsgType.CONTINUATION and self._partial is not None:
            self._partial.append(frame.get_payload_as_bytes())
            if frame.fin:
                whole, self._partial = b"".join(self._partial), None
                self._message(whole)
        elif kind is WSMsgType.CLOSE:
            self.close_code = int(frame.get_close_code())
            if not transport.is_close_frame_sent:
                transport.send_close(self.close_code if self.close_code != WSCloseCode.NO_INFO else WSCloseCode.OK)
            transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if self.close_code is None:
            self.close_code = _ABNORMAL
        if not self._first.done():
            self._first.set_exception(ConnectFailed("closed before hello", code=self.close_code))
        if not self.closed.done():
            self.closed.set_result(self.close_code)

    def _message(self, payload) -> None:
        frame = orjson.loads(payload)
        if not self._first.done():
            self._first.set_result(frame)
        elif self._handler is None:
            self._early.append(frame)
        else:
            self._dispatch(frame)

    def _dispatch(self, frame: dict) -> None:
        if self.error is not None:
            return
        try:
            self._handler(frame)  # type: ignore[misc]
        except Exception as exc:  # a tester bug: end this connection and report it
            self.error = exc
            self.abort()

    # -- the device's side -----------------------------------------------------------
    async def first_frame(self, timeout: float) -> dict:
        async with asyncio.timeout(timeout):
            return await asyncio.shield(self._first)

    def attach(self, handler: Callable[[dict], None]) -> None:
        """From now on every frame goes to `handler`, the ones that came meanwhile first."""
        early, self._early = self._early, []
        self._handler = handler
        for frame in early:
            self._dispatch(frame)

    @property
    def open(self) -> bool:
        return self.transport is not None and not self._closing and not self.closed.done()

    def send(self, frame: bytes) -> bool:
        """Queue a text frame for the end of this loop tick; False once closing or closed."""
        if not self.open:
            return False
        self._out.append(frame)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)
        return True

    def _flush(self) -> None:
        self._flush_scheduled = False
        frames, self._out = self._out, []
        transport = self.transport
        if transport is None or self.closed.done():
            return
        text = WSMsgType.TEXT
        for frame in frames:
            transport.send(text, frame)

    def close_soon(self, code: int = 1000) -> None:
        """Send what is queued, then a close frame; the server's answer ends the link."""
        transport = self.transport
        if transport is None or self._closing or self.closed.done():
            return
        self._flush()
        self._closing = True
        if not transport.is_close_frame_sent:
            transport.send_close(code)
        # A server that never answers the close is cut off.
        asyncio.get_running_loop().call_later(2.0, self._cut)

    def _cut(self) -> None:
        if self.transport is not None and not self.closed.done():
            self.transport.disconnect(graceful=False)

    def abort(self) -> None:
        if self.transport is not None and not self.closed.done():
            self.transport.disconnect(graceful=False)


async def connect_device(url: str, *, timeout: float) -> tuple[DeviceLink, dict, list[dict]]:
    """Connect and read `hello`: (link, hello, the frames that came in one `batch` with it).
    ConnectFailed (auth=True for a refused token) otherwise."""
    try:
        async with asyncio.timeout(timeout):
            _, link = await ws_connect(DeviceLink, url, websocket_handshake_timeout=timeout,
                                       enable_auto_pong=True, max_frame_size=2**22)
    except WSInvalidStatusError as exc:
        status = int(exc.response.status) if exc.response is not None else 0
        raise ConnectFailed(f"gateway answered HTTP {status}", auth=status in (401, 403)) from exc
    except (OSError, TimeoutError, WSError) as exc:
        raise ConnectFailed(f"cannot connect: {exc}") from exc
    assert isinstance(link, DeviceLink)
    try:
        first = await link.first_frame(timeout)
    except ConnectFailed as exc:
        raise ConnectFailed(f"closed before hello (code {exc.code})", auth=exc.code == CLOSE_UNAUTHORIZED,
                          code=exc.code) from None
    except TimeoutError as exc:
        link.abort()
        raise ConnectFailed("no hello from the gateway") from exc
    first, after_hello = split_hello(first)
    if first.get("type") != "hello":
        try:  # the gateway closes right after the error frame; its close code says more
            async with asyncio.timeout(1):
                await asyncio.shield(link.closed)
        except TimeoutError:
            link.abort()
        raise refused(first, link.close_code if link.close_code != _ABNORMAL else None)
    return link, first, after_hello


def split_hello(first: dict) -> tuple[dict, list[dict]]:
    """A compact connection's hello is the first inner frame when others waited with it
    (docs/protocol.md §12): (the first frame, the frames after it in that batch)."""
    if first.get("type") == "batch" and first.get("frames"):
        head, *rest = first["frames"]
        return head, rest
    return first, []


def refused(first: dict, close_code: int | None) -> ConnectFailed:
    """What a connection whose first frame was not `hello` failed with."""
    code = first.get("code")
    detail = f"{code}: {first.get('message')}" if first.get("message") else str(code)
    close = f", close {close_code}" if close_code else ""
    return ConnectFailed(f"refused ({detail}{close})", auth=code in ("unauthorized", "token_expired")
                         or close_code == CLOSE_UNAUTHORIZED, code=close_code)
