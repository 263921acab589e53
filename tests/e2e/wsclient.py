"""A real WebSocket client for e2e tests: records every frame, acks messages like an app does."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
from collections.abc import Callable

from websockets.asyncio.client import ClientConnection, connect

from services.common import codec
from services.common.auth import issue_token

_ids = itertools.count(1)


class WsClient:
    def __init__(self, gateway_url: str, secret: bytes, user: str, device: str = "phone", *,
                 auto_ack: bool = True, token: str | None = None, device_type: str = "mobile",
                 compact: bool = False) -> None:
        """`compact`: ask for compact frames (docs/protocol.md); `batch` frames are unwrapped
        into `frames` in order and counted in `batches`."""
        self.user = user
        self.device = device
        self.auto_ack = auto_ack
        token = token if token is not None else issue_token(secret, user)
        self.url = f"{gateway_url}?token={token}&device_id={device}&device_type={device_type}"
        if compact:
            self.url += "&compact=1"
        self.frames: list[dict] = []
        self.batches = 0
        self.ws: ClientConnection | None = None
        self._changed = asyncio.Condition()
        self._reader: asyncio.Task | None = None

    async def connect(self, *, wait_hello: bool = True, recv_buffer: int | None = None) -> WsClient:
        sock = None
        if recv_buffer is not None:  # a small window makes a non-reading client back up quickly
            host, port = self.url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, recv_buffer)
            sock.connect((host, int(port)))
        self.ws = await connect(self.url, max_size=None, open_timeout=10, sock=sock)
        self._reader = asyncio.create_task(self._read())
        if wait_hello:
            await self.wait_for(lambda f: f["type"] == "hello")
        return self

    async def _read(self) -> None:
        assert self.ws is not None
        with contextlib.suppress(Exception):
            async for raw in self.ws:
                frame = codec.loads(raw)
                inner = [frame]
                if frame.get("type") == "batch":
                    self.batches += 1
                    inner = frame["frames"]
                for frame in inner:
                    self.frames.append(frame)
                    if self.auto_ack and frame.get("type") == "message":
                        await self.ack(frame["conversation_id"], frame["seq"])
                async with self._changed:
                    self._changed.notify_all()
        async with self._changed:
            self._changed.notify_all()

    async def send_frame(self, frame: dict) -> None:
        assert self.ws is not None
        await self.ws.send(codec.dumps(frame), text=True)

    async def send_raw(self, data: str | bytes) -> None:
        assert self.ws is not None
        await self.ws.send(data)

    async def send(self, body: object, *, to: str | None = None, conversation_id: str | None = None,
                   client_msg_id: str | None = None) -> str:
        cmid = client_msg_id or f"{self.user}-{self.device}-{next(_ids)}"
        frame: dict = {"type": "send", "client_msg_id": cmid, "body": body}
        if to is not None:
            frame["to"] = to
        if conversation_id is not None:
            frame["conversation_id"] = conversation_id
        await self.send_frame(frame)
        return cmid

    async def ack(self, conversation_id: str, seq: int) -> None:
        await self.send_frame({"type": "ack", "conversation_id": conversation_id, "seq": seq})

    async def wait_for(self, predicate: Callable[[dict], bool], *, timeout: float = 15.0) -> dict:
        async def scan() -> dict:
            seen = 0
            while True:
                async with self._changed:
                    for frame in self.frames[seen:]:
                        if predicate(frame):
                            return frame
                    seen = len(self.frames)
                    if self._reader is not None and self._reader.done():
                        raise ConnectionError(f"{self.user}/{self.device}: connection closed ({self.close_code})")
                    await self._changed.wait()
        return await asyncio.wait_for(scan(), timeout)

    async def wait_count(self, predicate: Callable[[dict], bool], count: int, *, timeout: float = 20.0) -> list[dict]:
        await self.wait_for(lambda _: sum(1 for f in self.frames if predicate(f)) >= count, timeout=timeout)
        return [f for f in self.frames if predicate(f)]

    async def wait_closed(self, *, timeout: float = 10.0) -> int | None:
        assert self._reader is not None
        await asyncio.wait_for(asyncio.shield(self._reader), timeout)
        return self.close_code

    @property
    def close_code(self) -> int | None:
        return self.ws.close_code if self.ws is not None else None

    def messages(self, conversation_id: str | None = None) -> list[dict]:
        return [f for f in self.frames if f.get("type") == "message"
                and (conversation_id is None or f["conversation_id"] == conversation_id)]

    def acks(self, client_msg_id: str) -> list[str]:
        return [f["level"] for f in self.frames if f.get("type") == "ack" and f.get("client_msg_id") == client_msg_id]

    def errors(self) -> list[dict]:
        return [f for f in self.frames if f.get("type") == "error"]

    async def sync(self, **extra) -> dict:
        ref = f"sync-{next(_ids)}"
        await self.send_frame({"type": "sync", "id": ref, **extra})
        return await self.wait_for(lambda f: f.get("type") == "sync_result" and f.get("ref") == ref)

    async def ack_page(self, conversation_id: str, page: dict) -> None:
        """Ack a sync page as docs/protocol.md says: its `next` seq and event_id."""
        frame: dict = {"type": "ack", "conversation_id": conversation_id}
        for field in ("seq", "event_id"):
            if page["next"][field] > page["after"][field]:
                frame[field] = page["next"][field]
        if len(frame) > 2:
            await self.send_frame(frame)

    async def sync_all(self, **extra) -> dict[str, list[dict]]:
        """Sync until nothing is left; ack each page; return messages per conversation."""
        got: dict[str, list[dict]] = {}
        while True:
            result = await self.sync(**extra)
            more = False
            for conversation_id, data in result["conversations"].items():
                got.setdefault(conversation_id, []).extend(data["messages"])
                await self.ack_page(conversation_id, data)
                more = more or data["has_more"]
            if not more:
                return got

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(self._reader, 5)
