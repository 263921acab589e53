"""A small Flare client written from docs/protocol.md alone (issue 9's "outsider" client).

It deliberately imports nothing of Flare: only the stdlib and `websockets`. Every rule it
follows cites the section of docs/protocol.md it comes from, so a failure of a test built on
it is either a server that breaks the document or a document that says something else than
the server does.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

Frame = dict[str, Any]


# --- §2 Tokens ---------------------------------------------------------------------------

def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def key_from_secret_file(path: Path) -> bytes:
    """§2: the file's content, leading/trailing whitespace removed, as raw bytes (64 ASCII hex chars)."""
    return path.read_bytes().strip()


def mint_token(key: bytes, user_id: Any, *, ttl_s: float = 3600, **overrides: Any) -> str:
    """§2: base64url(payload) "." base64url(HMAC-SHA256(key, first part)); overrides replace claims."""
    now = time.time()
    payload: dict[str, Any] = {"sub": user_id, "aud": "client", "jti": uuid.uuid4().hex,
                               "iat": round(now, 3), "exp": int(now + ttl_s)}
    payload.update(overrides)
    first = _b64url(json.dumps(payload, separators=(",", ":")).encode("utf-8"))
    signature = hmac.new(key, first.encode("ascii"), hashlib.sha256).digest()
    return f"{first}.{_b64url(signature)}"


def c2c(a: str, b: str) -> str:
    """§4: `c2c:<a>:<b>`, the two user ids sorted."""
    x, y = sorted((a, b))
    return f"c2c:{x}:{y}"


def depth(value: Any) -> int:
    """§3 max_depth: nesting of arrays/objects; a scalar is 0, `{}` is 1."""
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


class LimitExceeded(ValueError):
    """The client refused to send a frame that breaks a limit the server advertised in hello."""


class Refused(Exception):
    """The server did not accept the connection: its error frame and close code (§1)."""

    def __init__(self, error: Frame | None, close_code: int | None) -> None:
        super().__init__(f"refused: {error} close={close_code}")
        self.error = error
        self.close_code = close_code


class Client:
    """One device's connection. Frames are kept in arrival order; `expect` takes the first match.

    Following §6/§7 by default: every live `message` is acked with its seq, and messages are
    kept once per (conversation_id, seq). `auto_ack=False` turns the acking off for tests that
    need to control it.
    """

    def __init__(self, url: str, key: bytes, user: str, device: str = "phone", *,
                 device_type: str | None = None, auto_ack: bool = True, heartbeat: bool = True) -> None:
        self.url, self.key, self.user, self.device = url, key, user, device
        self.device_type = device_type
        self.auto_ack = auto_ack
        self.heartbeat = heartbeat
        self.ws: ClientConnection | None = None
        self.hello: Frame = {}
        self.frames: list[Frame] = []  # not yet taken by expect()
        self.held: dict[tuple[str, int], Frame] = {}  # §6: first copy of each (conversation_id, seq)
        self.live_duplicates = 0  # live pushes of a (conversation_id, seq) already held
        self.closed: asyncio.Future | None = None
        self._arrived = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._n = 0

    # --- connection (§1, §5 hello) ---

    async def connect(self, token: str | None = None, **query: str) -> Frame:
        params = {"token": token if token is not None else mint_token(self.key, self.user),
                  "device_id": self.device}
        if self.device_type:
            params["device_type"] = self.device_type
        params.update(query)
        self.ws = await connect(f"{self.url}?{urlencode(params)}", max_size=None, open_timeout=10)
        first = json.loads(await asyncio.wait_for(self.ws.recv(), 10))
        if first.get("type") != "hello":
            try:
                await asyncio.wait_for(self.ws.wait_closed(), 5)
            finally:
                code = self.ws.close_code
            raise Refused(first, code)
        self.hello = first
        self.closed = asyncio.get_running_loop().create_future()
        self._tasks.append(asyncio.create_task(self._read()))
        if self.heartbeat:
            self._tasks.append(asyncio.create_task(self._beat()))
        return first

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for raw in self.ws:
                frame = json.loads(raw)
                if frame.get("type") == "message":
                    await self._on_message(frame)
                self.frames.append(frame)
                self._arrived.set()
        except ConnectionClosed:
            pass
        finally:
            if not self.closed.done():
                self.closed.set_result(self.ws.close_code)
            self._arrived.set()

    async def _on_message(self, m: Frame) -> None:
        key = (m["conversation_id"], m["seq"])
        if key in self.held:
            self.live_duplicates += 1
        else:
            self.held[key] = m
        if self.auto_ack:  # §7: a device acks every live message with its seq
            await self.send_frame({"type": "ack", "conversation_id": m["conversation_id"],
                                   "seq": m["seq"], "msg_id": m["msg_id"]})

    async def _beat(self) -> None:
        # §3: send heartbeat every heartbeat_interval_s (a third of the timeout)
        interval = float(self.hello["heartbeat_interval_s"])
        while True:
            await asyncio.sleep(interval)
            try:
                await self.send_frame({"type": "heartbeat", "id": self.next_id("hb")})
            except ConnectionClosed:
                return

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):
                pass
        self._tasks.clear()
        if self.ws is not None:
            await self.ws.close()

    # --- sending (§3 limits) ---

    def next_id(self, prefix: str = "f") -> str:
        self._n += 1
        return f"{prefix}-{self._n}"

    async def send_frame(self, frame: Frame) -> None:
        """Send a frame after checking the limits hello advertised (§3)."""
        text = json.dumps(frame, separators=(",", ":"))
        if len(text.encode("utf-8")) > self.hello["max_frame_bytes"]:
            raise LimitExceeded(f"frame over max_frame_bytes={self.hello['max_frame_bytes']}")
        if depth(frame) > self.hello["max_depth"]:
            raise LimitExceeded(f"frame nests deeper than max_depth={self.hello['max_depth']}")
        if frame.get("type") == "send":
            body = frame.get("body")
            size = len((body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))).encode("utf-8"))
            if size > self.hello["max_body_bytes"]:
                raise LimitExceeded(f"body over max_body_bytes={self.hello['max_body_bytes']}")
        assert self.ws is not None
        await self.ws.send(text)

    async def send_raw(self, data: str | bytes | Frame) -> None:
        """No limit checks: for tests that send what a client must not."""
        assert self.ws is not None
        await self.ws.send(data if isinstance(data, (str, bytes)) else json.dumps(data))

    # --- receiving ---

    async def expect(self, pred: Callable[[Frame], bool], timeout: float = 10.0) -> Frame:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for i, f in enumerate(self.frames):
                if pred(f):
                    return self.frames.pop(i)
            if self.closed is not None and self.closed.done():
                raise ConnectionError(f"closed ({self.closed.result()}) while waiting; unmatched: {self.frames[-5:]}")
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise TimeoutError(f"no matching frame in {timeout}s; last frames: {self.frames[-5:]}")
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), left)
            except TimeoutError:
                pass

    async def expect_none(self, pred: Callable[[Frame], bool], within: float = 1.0) -> None:
        try:
            f = await self.expect(pred, within)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected frame: {f}")

    async def answer(self, ref: str, timeout: float = 10.0) -> Frame:
        return await self.expect(lambda f: f.get("ref") == ref and f.get("type") != "ack", timeout)

    async def request(self, frame: Frame, timeout: float = 10.0) -> Frame:
        """Send a frame with a fresh `id` and return its answer (or error) by `ref` (§3)."""
        frame = {**frame, "id": frame.get("id") or self.next_id(frame["type"])}
        await self.send_frame(frame)
        return await self.answer(frame["id"], timeout)

    # --- messages (§6) ---

    async def send(self, body: Any, *, to: str | None = None, conversation_id: str | None = None,
                   client_msg_id: str | None = None, wait: str | None = "stored") -> dict[str, Frame]:
        """Send; with `wait` return the acks by level up to that one (an error raises)."""
        cmid = client_msg_id or uuid.uuid4().hex
        frame: Frame = {"type": "send", "client_msg_id": cmid, "body": body}
        if to is not None:
            frame["to"] = to
        if conversation_id is not None:
            frame["conversation_id"] = conversation_id
        await self.send_frame(frame)
        if wait is None:
            return {"client_msg_id": {"client_msg_id": cmid}}
        return await self.acks_for(cmid, wait)

    async def acks_for(self, cmid: str, until: str = "stored", timeout: float = 15.0) -> dict[str, Frame]:
        acks: dict[str, Frame] = {}
        while until not in acks:
            f = await self.expect(lambda f: f.get("ref") == cmid and f["type"] in ("ack", "error"), timeout)
            if f["type"] == "error":
                raise ProtocolError(f)
            acks[f["level"]] = f
        return acks

    # --- sync (§7) ---

    async def sync(self, *, limit: int | None = None, cursors: dict | None = None) -> Frame:
        frame: Frame = {"type": "sync"}
        if limit is not None:
            frame["limit"] = limit
        if cursors is not None:
            frame["cursors"] = cursors
        result = await self.request(frame)
        if result["type"] != "sync_result":
            raise ProtocolError(result)
        return result

    async def ack_page(self, conversation_id: str, page: Frame) -> None:
        """§7: ack a page with next.seq and next.event_id, omitting a member equal to after's."""
        ack: Frame = {"type": "ack", "conversation_id": conversation_id}
        if page["next"]["seq"] != page["after"]["seq"]:
            ack["seq"] = page["next"]["seq"]
        if page["next"]["event_id"] != page["after"]["event_id"]:
            ack["event_id"] = page["next"]["event_id"]
        if len(ack) > 2:
            await self.send_frame(ack)

    async def sync_all(self, *, limit: int | None = None, max_rounds: int = 1000,
                       between_pages: Callable[[], Any] | None = None) -> list[Frame]:
        """§7 paging: sync, keep each page's messages, ack `next`, again while any page has_more."""
        pages: list[Frame] = []
        for _ in range(max_rounds):
            result = await self.sync(limit=limit)
            more = False
            for conv, page in result["conversations"].items():
                pages.append({"conversation_id": conv, **page})
                for m in page["messages"]:
                    self.held.setdefault((conv, m["seq"]), m)
                await self.ack_page(conv, page)
                more = more or page["has_more"]
            if not more:
                return pages
            if between_pages is not None:
                await between_pages()
        raise AssertionError(f"sync still has_more after {max_rounds} rounds")

    def seqs(self, conversation_id: str) -> list[int]:
        return sorted(s for (c, s) in self.held if c == conversation_id)


class ProtocolError(Exception):
    def __init__(self, frame: Frame) -> None:
        super().__init__(f"{frame.get('code')}: {frame.get('message')} (ref={frame.get('ref')})")
        self.frame = frame
        self.code = frame.get("code")
