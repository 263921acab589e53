"""Hostile clients against a running `flarectl up` (docs/protocol.md §3 limits, §7 slow
clients, §10 close codes; README [gateway] caps), while ordinary clients chat beside them:

- frames over `max_frame_bytes` in every shape a socket allows (whole, a length that lies,
  many fragments): close 1009, and nothing else is disturbed; a frame of exactly the limit
  is served;
- frames that break RFC 6455 below the JSON (bad UTF-8 in a text message, a continuation
  with nothing to continue, a new message inside a fragmented one): the RFC's close code
  (1007, 1002), while a binary message only gets an error frame;
- frames cut into one-byte TCP writes (the upgrade request too), fragments with a ping
  between them, frames sharing one write: served like any other;
- clients that never read while a group they are in gets megabytes, one of them also
  pipelining large syncs: they are cut off (4008, "closed with 4008; nothing is lost"), the
  others get everything in order, and the server's memory stays within the documented caps.

Every test runs on both WebSocket layers the gateway can use (`[gateway] websocket`,
services/gateway/links.py): a client must not be able to tell them apart.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from .client import Client, mint_token
from .helpers import u
from .live import FlareProcess, Sender, group_rss_bytes, wait_audit
from .rawws import BINARY, CONT, PING, PONG, TEXT, Closed, RawWs, frame, text

MiB = 1 << 20


@pytest.fixture(params=["picows", "websockets"])
def websocket(request) -> dict[str, str]:
    """The server's environment for one WebSocket layer."""
    return {"FLARE_GATEWAY__WEBSOCKET": request.param}


async def _chatting(server: FlareProcess):
    """An ordinary pair sending throughout; returns (sender, stop, task)."""
    sender = Sender(server.url, server.secret, u("ok"), u("peer"))
    stop = asyncio.Event()
    task = asyncio.create_task(sender.run(stop, deadline=90))
    while len(sender.stored) < 10:
        assert not task.done(), task.exception() if task.done() else None
        await asyncio.sleep(0.05)
    return sender, stop, task


async def _still_served(sender: Sender, stop: asyncio.Event, task: asyncio.Task, what: str) -> None:
    """Let the ordinary pair chat one more second, stop it, and check it got sends stored meanwhile."""
    before = len(sender.stored)
    await asyncio.sleep(1.0)
    stop.set()
    await task
    assert len(sender.stored) > before, what


async def _nobody_else_noticed(server: FlareProcess, sender: Sender, stop: asyncio.Event, task: asyncio.Task) -> None:
    """The ordinary pair was served throughout, the server is healthy, and the audit holds."""
    await _still_served(sender, stop, task, "the ordinary client stopped being served")
    assert server.health()["status"] == "ok", server.health()
    await wait_audit(server.url, server.secret, [sender])


def _raw(server: FlareProcess, user: str | None = None, **kwargs) -> RawWs:
    user = user or u("raw")
    return RawWs(server.url, mint_token(server.secret, user), u("dev"), **kwargs)


async def test_oversized_frames_close_1009_and_nobody_else_notices(tmp_path, websocket):
    server = FlareProcess(tmp_path / "flare", env=websocket).start()
    try:
        sender, stop, task = await _chatting(server)
        probe = _raw(server)
        hello = await probe.open()
        limit = hello["max_frame_bytes"]
        probe.abort()

        # exactly the limit is a frame like any other (§3: "a bigger frame closes")
        exact = _raw(server)
        await exact.open()
        pad = limit - len(json.dumps({"type": "heartbeat", "id": "edge", "pad": ""}, separators=(",", ":")))
        await exact.write(text({"type": "heartbeat", "id": "edge", "pad": "x" * pad}))
        assert (await exact.read_json())["ref"] == "edge"

        over = b'{"type":"heartbeat","pad":"' + b"x" * limit + b'"}'
        shapes = {
            "one frame, limit + 1": [frame(TEXT, b'{"type":"heartbeat","pad":"' + b"x" * (limit - 28) + b'"}')],
            "a whole frame of limit + 28": [frame(TEXT, over)],
            "a header claiming 1 GiB, 1 KiB sent": [frame(TEXT, b"x" * 1024, length=1 << 30)],
            "a header claiming 2^63-1": [frame(TEXT, b"", length=(1 << 63) - 1)],
            "three fragments of limit/2": [frame(TEXT, over[: limit // 2], fin=False),
                                           frame(CONT, over[limit // 2: limit], fin=False),
                                           frame(CONT, over[limit:], fin=True)],
            "256 fragments of 512 bytes": [frame(TEXT if i == 0 else CONT, b"x" * 512, fin=i == 255)
                                           for i in range(256)],
        }
        results = {}
        for name, frames in shapes.items():
            c = _raw(server)
            await c.open()
            started = time.monotonic()
            try:
                for f in frames:
                    await c.write(f)
            except (BrokenPipeError, ConnectionResetError):
                pass  # closed before the rest arrived: fine, the close frame tells why
            results[name] = (await c.close_code(timeout=10), round(time.monotonic() - started, 2))
            c.abort()
        print("oversized:", results)
        assert all(code == 1009 for code, _ in results.values()), results
        assert all(seconds < 5 for _, seconds in results.values()), results

        # frames at the limit still work on the connection that sent one
        await exact.write(text({"type": "heartbeat", "id": "after"}))
        assert (await exact.read_json())["ref"] == "after"
        exact.abort()

        await _nobody_else_noticed(server, sender, stop, task)
    finally:
        server.stop()


async def test_frames_that_break_rfc_6455_close_with_its_code_and_nobody_else_notices(tmp_path, websocket):
    server = FlareProcess(tmp_path / "flare", env=websocket).start()
    try:
        sender, stop, task = await _chatting(server)
        heartbeat = b'{"type":"heartbeat","id":"h"}'
        shapes = {
            "invalid UTF-8 in a text frame": ([frame(TEXT, b'{"type":"heartbeat","pad":"\xff\xfe"}')], 1007),
            "invalid UTF-8 split over fragments": ([frame(TEXT, b'{"type":"heartbeat","pad":"\xe2', fin=False),
                                                    frame(CONT, b'\x28\xa1"}')], 1007),
            "a continuation with nothing to continue": ([frame(CONT, heartbeat)], 1002),
            "a new message inside a fragmented one": ([frame(TEXT, heartbeat[:10], fin=False),
                                                       frame(TEXT, heartbeat)], 1002),
        }
        results = {}
        for name, (frames, _) in shapes.items():
            c = _raw(server)
            await c.open()
            try:
                for f in frames:
                    await c.write(f)
            except (BrokenPipeError, ConnectionResetError):
                pass
            results[name] = await c.close_code(timeout=10)
            c.abort()
        assert results == {name: code for name, (_, code) in shapes.items()}, results

        # A binary message is well-formed WebSocket: refused with an error frame, and the
        # connection goes on.
        c = _raw(server)
        await c.open()
        await c.write(frame(BINARY, heartbeat))
        refused = await c.read_json()
        assert refused["type"] == "error" and "binary" in refused["message"], refused
        await c.write(text({"type": "heartbeat", "id": "after-binary"}))
        assert (await c.read_json())["ref"] == "after-binary"
        c.abort()

        await _nobody_else_noticed(server, sender, stop, task)
    finally:
        server.stop()


async def test_permessage_deflate_cannot_inflate_past_the_frame_limit(tmp_path, websocket):
    """If the gateway offers compression, a small compressed frame that inflates to 64 MiB must
    still be a frame over max_frame_bytes (1009), not 64 MiB of the server's memory."""
    import zlib

    server = FlareProcess(tmp_path / "flare", env=websocket).start()
    try:
        c = _raw(server, extensions="permessage-deflate; client_max_window_bits")
        hello = await c.open()
        if "permessage-deflate" not in c.response_headers.lower():
            print("permessage-deflate not negotiated:", c.response_headers)
            c.abort()
            return  # not negotiated: every frame is taken as it comes, the limit above holds
        limit = hello["max_frame_bytes"]
        z = zlib.compressobj(9, zlib.DEFLATED, -15)
        bomb = z.compress(b'{"type":"heartbeat","pad":"' + b"x" * (64 * MiB) + b'"}') + z.flush(zlib.Z_SYNC_FLUSH)
        bomb = bomb[:-4]  # RFC 7692 §7.2.1: drop the final 00 00 ff ff
        assert len(bomb) < limit
        rss = group_rss_bytes(server.proc)
        await c.write(frame(TEXT, bomb, rsv1=True))
        assert await c.close_code(timeout=10) == 1009
        assert group_rss_bytes(server.proc) - rss < 48 * MiB
        assert server.health()["status"] == "ok"
    finally:
        server.stop()


async def test_frames_in_one_byte_writes_fragments_and_shared_writes_are_served(tmp_path, websocket):
    server = FlareProcess(tmp_path / "flare", env=websocket).start()
    try:
        sender, stop, task = await _chatting(server)
        alice, bob = u("tiny"), u("tpeer")
        reader = Client(server.url, server.secret, bob, "phone")
        await reader.connect()
        c = _raw(server, alice)
        await c.open(chunk=1, delay=0.001)  # the upgrade request a byte at a time

        # a send frame a byte at a time (header, mask and payload each cut up)
        await c.write(text({"type": "send", "client_msg_id": "b1", "to": bob, "body": "byte by byte"}),
                      chunk=1, delay=0.001)
        # a send in three fragments, a ping between them, written three bytes at a time
        payload = json.dumps({"type": "send", "client_msg_id": "b2", "to": bob, "body": "in fragments"}).encode()
        third = len(payload) // 3
        await c.write(frame(TEXT, payload[:third], fin=False) + frame(PING, b"hi")
                      + frame(CONT, payload[third: 2 * third], fin=False) + frame(CONT, payload[2 * third:]),
                      chunk=3, delay=0.001)
        # three frames in one write
        await c.write(text({"type": "heartbeat", "id": "h1"}) + text({"type": "send", "client_msg_id": "b3",
                      "to": bob, "body": "shared write"}) + text({"type": "heartbeat", "id": "h2"}))

        stored, refs, pong = set(), set(), False
        deadline = time.monotonic() + 15
        while (stored != {"b1", "b2", "b3"} or refs != {"h1", "h2"} or not pong) and time.monotonic() < deadline:
            opcode, data = await asyncio.wait_for(c.read_frame(), 15)
            if opcode == PONG:
                pong = pong or data == b"hi"
                continue
            assert opcode == TEXT, (opcode, data)
            f = json.loads(data)
            assert f["type"] != "error", f
            if f["type"] == "ack" and f.get("level") == "stored":
                stored.add(f["ref"])
            if f["type"] == "heartbeat_ack":
                refs.add(f["ref"])
        assert (stored, refs, pong) == ({"b1", "b2", "b3"}, {"h1", "h2"}, True)

        for _ in range(100):
            if len(reader.seqs(f"c2c:{min(alice, bob)}:{max(alice, bob)}")) == 3:
                break
            await asyncio.sleep(0.05)
        bodies = [m["body"] for (_, _), m in sorted(reader.held.items())]
        assert bodies == ["byte by byte", "in fragments", "shared write"], bodies
        c.abort()
        await reader.close()
        stop.set()
        await task
        await wait_audit(server.url, server.secret, [sender])
    finally:
        server.stop()


NON_READERS = 6
MESSAGES, BODY = 700, 15_000  # ~10 MB to every member: past each one's 1 MiB queue and socket buffers
SYNCS = 300  # a hog's pipelined syncs of 200 x 15 KB messages each: 900 MB if all were queued


async def test_clients_that_never_read_are_cut_off_and_memory_stays_bounded(tmp_path, websocket):
    server = FlareProcess(tmp_path / "flare", env=websocket).start()
    try:
        owner, readers = u("own"), [u("rd") for _ in range(2)]
        sleepers = [u("zz") for _ in range(NON_READERS)]
        room = u("room")
        conv = f"group:{room}"
        oc = Client(server.url, server.secret, owner, "phone")
        await oc.connect()
        created = await oc.request({"type": "group_create", "group_id": room,
                                    "members": readers + sleepers, "history": "shared"})
        assert created["type"] == "group_created", created
        active = []
        for r in readers:
            c = Client(server.url, server.secret, r, "phone")
            await c.connect()
            active.append(c)
        raws = []
        for s in sleepers:  # a 4 KiB receive buffer, and nothing is ever read after hello
            c = _raw(server, s, rcvbuf=4096)
            await c.open()
            raws.append(c)
        await asyncio.sleep(1.0)
        baseline = group_rss_bytes(server.proc)

        sender = Sender(server.url, server.secret, owner, "", window=16, conversation_id=conv, body_bytes=BODY)
        peak = baseline
        flood = asyncio.create_task(sender.run(asyncio.Event(), count=MESSAGES, deadline=50))

        while not flood.done():
            peak = max(peak, group_rss_bytes(server.proc))
            await asyncio.sleep(0.2)
        await flood
        for _ in range(10):
            peak = max(peak, group_rss_bytes(server.proc))
            await asyncio.sleep(0.2)
        assert len(sender.stored) == MESSAGES

        # the readers got every message, live or by §7's sync after a gap, in seq order
        for c in active:
            for _ in range(200):
                if len(c.seqs(conv)) >= MESSAGES:
                    break
                await asyncio.sleep(0.05)
            if len(c.seqs(conv)) < MESSAGES:
                await c.sync_all()
            assert c.seqs(conv) == list(range(1, MESSAGES + 1)), (c.user, len(c.seqs(conv)), c.closed.done())
            assert not c.closed.done(), f"a reader was closed: {c.closed.result()}"

        # each sleeper was cut off: its socket ends (4008 or EOF) long before 700 messages
        ends = []
        for c in raws:
            got, code = 0, "open"
            try:
                while True:
                    f = await c.read_json(timeout=10)
                    got += f.get("type") == "message"
            except Closed as closed:
                code = closed.code
            except (EOFError, ConnectionResetError):
                code = None
            except (TimeoutError, asyncio.TimeoutError):
                code = "still open"
            ends.append((code, got))
            c.abort()
        print(f"RSS baseline {baseline / MiB:.0f} MiB, peak {peak / MiB:.0f} MiB; sleepers {ends}")
        assert all(code in (4008, None) for code, _ in ends), ends
        assert all(got < MESSAGES for _, got in ends), ends
        # docs: at most 1 MiB queued per connection. What the 10 MB flood may cost on its own
        # (log tail, cache copies: ~25-35 MiB measured) is apart from the sleepers, whose
        # queues together may hold 6 MiB; queueing the flood for each would add 60 MB more.
        assert peak - baseline < 96 * MiB, f"RSS grew {(peak - baseline) / MiB:.0f} MiB"
        assert server.health()["status"] == "ok", server.health()
        await wait_audit(server.url, server.secret, [sender])

        # a sleeper comes back on a new device and pipelines big syncs it never reads: each
        # answer is 200 x 15 KB, three times its 1 MiB queue; all of them would be 900 MB
        hog = _raw(server, sleepers[0], rcvbuf=4096)
        await hog.open()
        chat, stop, chatting = await _chatting(server)
        baseline2 = group_rss_bytes(server.proc)
        peak2, written = baseline2, 0
        try:
            for i in range(SYNCS):
                await asyncio.wait_for(hog.write(text({"type": "sync", "id": f"s{i}", "limit": 200,
                                                       "cursors": {conv: {"seq": 0}}})), 2)
                written += 1
                if i % 10 == 0:
                    peak2 = max(peak2, group_rss_bytes(server.proc))
        except (TimeoutError, asyncio.TimeoutError, BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading from it, or closed it: both bound what it costs
        for _ in range(25):
            peak2 = max(peak2, group_rss_bytes(server.proc))
            await asyncio.sleep(0.2)
        await _still_served(chat, stop, chatting, "others stopped being served while the hog asked")
        code = await hog.close_code(timeout=10)
        hog.abort()
        print(f"hog: {written} syncs written, closed {code}; RSS {baseline2 / MiB:.0f} -> {peak2 / MiB:.0f} MiB")
        assert code in (4008, None), code
        assert peak2 - baseline2 < 64 * MiB, f"RSS grew {(peak2 - baseline2) / MiB:.0f} MiB"
        assert server.health()["status"] == "ok", server.health()
        await wait_audit(server.url, server.secret, [chat])
        for c in [oc, *active]:
            await c.close()
    finally:
        server.stop()


PINGS = 400_000  # 125-byte pings: ~52 MB of pongs owed to a client that never reads them


async def test_a_ping_flood_from_a_client_that_never_reads_is_bounded(tmp_path, websocket):
    """RFC 6455 makes the server answer each ping; README: each connection's outbound data is
    capped (outbound_queue_bytes, 1 MiB; overflow closes it with 4008) and all of them together
    (outbound_total_bytes). So a client that pings and never reads must be stopped, either by
    the server no longer reading it (its writes stall) or by a close, before the pongs it owes
    cost the server tens of MiB."""
    server = FlareProcess(tmp_path / "flare", env=websocket).start()
    try:
        sender, stop, task = await _chatting(server)
        c = _raw(server, rcvbuf=4096)
        await c.open()
        baseline = group_rss_bytes(server.proc)
        batch = frame(PING, b"p" * 125) * 1000
        sent, stalled = 0, False
        try:
            while sent < PINGS:
                await asyncio.wait_for(c.write(batch), 3)
                sent += 1000
        except (TimeoutError, asyncio.TimeoutError):
            stalled = True  # the server stopped reading: backpressure, what bounds it
        except (BrokenPipeError, ConnectionResetError):
            stalled = True  # closed
        await asyncio.sleep(1.0)
        grown = group_rss_bytes(server.proc) - baseline
        await _still_served(sender, stop, task, "others stopped being served")
        assert server.health()["status"] == "ok", server.health()
        c.abort()
        assert grown < 32 * MiB, (f"{sent} pings, never read: the server grew {grown / MiB:.0f} MiB "
                                  f"({'stalled' if stalled else 'still reading'})")
    finally:
        server.stop()


async def test_stalled_upgrades_do_not_keep_others_out(tmp_path, websocket):
    """Hundreds of TCP connections that never finish (or never start) the WebSocket upgrade:
    a new client still connects and chats at once, and the stalled ones are let go."""
    import socket

    server = FlareProcess(tmp_path / "flare", env=websocket).start()
    socks: list[socket.socket] = []
    try:
        loop = asyncio.get_running_loop()
        for i in range(400):
            s = socket.socket()
            s.setblocking(False)
            await loop.sock_connect(s, ("127.0.0.1", server.port))
            if i % 2:  # half of them send half an upgrade request
                await loop.sock_sendall(s, b"GET /ws?token=x&device_id=d HTTP/1.1\r\nHost: x\r\n")
            socks.append(s)
        started = time.monotonic()
        sender = Sender(server.url, server.secret, u("in"), u("peer"))
        await sender.run(asyncio.Event(), count=10, deadline=20)
        assert time.monotonic() - started < 5, "a new client waited behind stalled upgrades"
        await wait_audit(server.url, server.secret, [sender])
        open_ = len(socks)
        for _ in range(60):  # the server drops them (websockets' upgrade timeout)
            open_ = 0
            for s in socks:
                try:
                    open_ += s.recv(1) != b""
                except BlockingIOError:
                    open_ += 1
                except OSError:
                    pass
            if not open_:
                break
            await asyncio.sleep(0.5)
        assert open_ == 0, f"{open_} stalled upgrades still held after 30 s"
        assert server.health()["status"] == "ok", server.health()
    finally:
        for s in socks:
            s.close()
        server.stop()
