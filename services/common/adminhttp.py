"""The admin HTTP server: GET /metrics and GET /healthz, bounded so it cannot be starved.

HTTP/1.1 is parsed by h11 (sans-I/O, the parser under httpx/httpcore, already installed
with it) rather than by hand; the I/O around it is a few lines of asyncio so /healthz
reports from the event loop it describes. What a slow or hostile client can cost is capped:

- one overall deadline per connection (`request_deadline_s`, default 5 s) from accept to
  the last byte of the answer — trickling one header line every few seconds (slowloris)
  buys nothing;
- at most `max_connections` open at once (default 32); at the cap the *oldest* connection
  is dropped to make room, so a fresh health check still gets in while old tricklers lose
  their place (they are the ones that have been waiting longest for nothing);
- a request head of at most 16 KiB and no body.

So the admin port holds at most `max_connections` + 1 file handles, whatever arrives:
it can never use up the handles the gateway needs for its WebSocket clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import h11
import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

__all__ = ["AdminServer"]

log = logging.getLogger("flare.admin")

_MAX_HEAD_BYTES = 16 * 1024


class AdminServer:
    """GET /metrics and GET /healthz on a small bounded HTTP/1.1 server."""

    def __init__(self, host: str, port: int, *, health: Callable[[], dict] | None = None,
                 max_connections: int = 32, request_deadline_s: float = 5.0,
                 metrics: Callable[[], Awaitable[bytes]] | None = None) -> None:
        """`metrics`: the /metrics body, when it is more than this process's registry (the
        monolith with gateway workers adds theirs in)."""
        if max_connections < 1 or request_deadline_s <= 0:
            raise ValueError("max_connections must be >= 1 and request_deadline_s > 0")
        self.host = host
        self.port = port
        self._health = health or (lambda: {"status": "ok"})
        self._metrics = metrics
        self._max_connections = max_connections
        self._deadline = request_deadline_s
        self._server: asyncio.AbstractServer | None = None
        self._open: dict[asyncio.Task, asyncio.StreamWriter] = {}  # insertion order = age
        self.dropped = 0  # connections closed to make room at the cap

    @property
    def open_connections(self) -> int:
        return len(self._open)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, self.port, backlog=64)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._open):
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while len(self._open) >= self._max_connections:
            oldest, oldest_writer = next(iter(self._open.items()))
            del self._open[oldest]
            oldest_writer.transport.abort()  # frees the handle now, not after a FIN handshake
            oldest.cancel()
            self.dropped += 1
        task = asyncio.current_task()
        assert task is not None
        self._open[task] = writer
        try:
            async with asyncio.timeout(self._deadline):
                await self._serve(reader, writer)
        except (TimeoutError, ConnectionError, h11.ProtocolError):
            pass
        except asyncio.CancelledError:
            if self._server is not None and self._server.is_serving() and task not in self._open:
                return  # dropped at the cap: not a shutdown, so do not propagate
            raise
        finally:
            self._open.pop(task, None)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_HEAD_BYTES)
        request: h11.Request | None = None
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await reader.read(4096)
                conn.receive_data(data)  # b"" tells h11 the peer closed
                if not data and conn.their_state is not h11.DONE and request is None:
                    return
                continue
            if isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                self._send(writer, conn, 413, "text/plain", b"admin requests carry no body\n")
                await writer.drain()
                return
            elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                break
        assert request is not None
        status, ctype, body = await self._answer(request)
        self._send(writer, conn, status, ctype, body)
        await writer.drain()

    async def _answer(self, request: h11.Request) -> tuple[int, str, bytes]:
        if request.method != b"GET":
            return 405, "text/plain", b"only GET\n"
        path = request.target.split(b"?", 1)[0]
        if path == b"/metrics":
            return 200, CONTENT_TYPE_LATEST, await self._metrics() if self._metrics is not None else generate_latest()
        if path == b"/healthz":
            health = self._health()
            return (200 if health.get("status") == "ok" else 503), "application/json", orjson.dumps(health)
        return 404, "text/plain", b"not found\n"

    @staticmethod
    def _send(writer: asyncio.StreamWriter, conn: h11.Connection, status: int, ctype: str, body: bytes) -> None:
        headers = [("content-type", ctype), ("content-length", str(len(body))), ("connection", "close")]
        writer.write(conn.send(h11.Response(status_code=status, headers=headers)))
        writer.write(conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage()))
