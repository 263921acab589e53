"""A WebSocket client on a bare socket (RFC 6455), for clients that misbehave below the
protocol: frames written a byte at a time, lengths that lie, fragments, a client that never
reads. Nothing of Flare and no WebSocket library: the frames are built here by hand.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
from typing import Any
from urllib.parse import urlencode, urlsplit

TEXT, BINARY, CONT, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA


def frame(opcode: int, payload: bytes, *, fin: bool = True, length: int | None = None, rsv1: bool = False) -> bytes:
    """One masked client frame; `length` may lie about the payload's size."""
    n = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 1 << 16:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def text(obj: Any) -> bytes:
    return frame(TEXT, json.dumps(obj, separators=(",", ":")).encode())


class RawWs:
    def __init__(self, url: str, token: str, device: str, *, rcvbuf: int | None = None,
                 extensions: str | None = None) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        self.path = f"{parts.path}?{urlencode({'token': token, 'device_id': device})}"
        self.rcvbuf, self.extensions = rcvbuf, extensions
        self.sock: socket.socket | None = None
        self.buf = b""
        self.response_headers = ""

    def handshake_bytes(self) -> bytes:
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET {self.path} HTTP/1.1", f"Host: {self.host}:{self.port}", "Upgrade: websocket",
                 "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
        if self.extensions:
            lines.append(f"Sec-WebSocket-Extensions: {self.extensions}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    async def open(self, *, chunk: int | None = None, delay: float = 0.0) -> dict:
        """Connect, upgrade (the request written `chunk` bytes at a time), return `hello`."""
        loop = asyncio.get_running_loop()
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if self.rcvbuf:  # before connect, so the advertised window stays small
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        await loop.sock_connect(s, (self.host, self.port))
        self.sock = s
        await self.write(self.handshake_bytes(), chunk=chunk, delay=delay)
        while b"\r\n\r\n" not in self.buf:
            await self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        self.response_headers = head.decode()
        assert head.startswith(b"HTTP/1.1 101"), head
        opcode, payload = await self.read_frame()
        assert opcode == TEXT, (opcode, payload)
        return json.loads(payload)

    async def write(self, data: bytes, *, chunk: int | None = None, delay: float = 0.0) -> None:
        loop = asyncio.get_running_loop()
        if not chunk:
            await loop.sock_sendall(self.sock, data)
            return
        for i in range(0, len(data), chunk):
            await loop.sock_sendall(self.sock, data[i:i + chunk])
            await asyncio.sleep(delay)

    async def _fill(self) -> None:
        data = await asyncio.get_running_loop().sock_recv(self.sock, 65536)
        if not data:
            raise EOFError("connection closed by the server")
        self.buf += data

    async def _take(self, n: int) -> bytes:
        while len(self.buf) < n:
            await self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    async def read_frame(self) -> tuple[int, bytes]:
        """One server frame (unmasked, per RFC 6455 §5.1), fragments joined."""
        data, first_opcode = b"", None
        while True:
            b0, b1 = await self._take(2)
            opcode, n = b0 & 0x0F, b1 & 0x7F
            if n == 126:
                (n,) = struct.unpack("!H", await self._take(2))
            elif n == 127:
                (n,) = struct.unpack("!Q", await self._take(8))
            payload = await self._take(n)
            if opcode >= 0x8:  # control frames may come between fragments
                return opcode, payload
            first_opcode = opcode if first_opcode is None else first_opcode
            data += payload
            if b0 & 0x80:
                return first_opcode, data

    async def read_json(self, timeout: float = 10.0) -> dict:
        """The next text frame as JSON; a close frame raises Closed with its code."""
        while True:
            opcode, payload = await asyncio.wait_for(self.read_frame(), timeout)
            if opcode == CLOSE:
                raise Closed(struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None)
            if opcode == TEXT:
                return json.loads(payload)

    async def close_code(self, timeout: float = 10.0) -> int | None:
        """Read until the server's close frame (its code) or EOF (None)."""
        try:
            while True:
                await self.read_json(timeout)
        except Closed as closed:
            return closed.code
        except (EOFError, ConnectionResetError):
            return None

    def abort(self) -> None:
        if self.sock is not None:
            self.sock.close()


class Closed(Exception):
    def __init__(self, code: int | None) -> None:
        super().__init__(f"closed with {code}")
        self.code = code
