"""Issue 9 item 12: `flarectl chat` is a client too, and keeps the protocol's promises.

The chat runs as a real subprocess (its stdin a pipe) against a running deployment; other
users are real WebSocket clients.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from services.common.config import load_config
from services.common.model import c2c_conversation_id
from services.wiring.monolith import Monolith

from .wsclient import WsClient

REPO = Path(__file__).resolve().parents[2]
AB = c2c_conversation_id("alice", "bob")


class Chat:
    """`flarectl chat USER --to PEER` in a subprocess; its output lines are collected."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, gateway_url: str, secret: bytes, tmp_path: Path, user: str, peer: str,
                    device: str = "cli") -> Chat:
        data_dir = tmp_path / f"chat-{user}-{device}"
        data_dir.mkdir()
        (data_dir / "token.secret").write_bytes(secret)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "flarectl.main", "chat", user, "--to", peer, "--device", device,
            "--gateway", gateway_url, "--data-dir", str(data_dir), cwd=REPO,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "NO_COLOR": "1", "COLUMNS": "250"}, start_new_session=True)
        chat = cls(proc)
        await chat.wait_line(lambda line: "connected as" in line)
        return chat

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))

    async def wait_line(self, predicate, *, timeout: float = 15.0) -> str:
        async def scan() -> str:
            while True:
                for line in self.lines:
                    if predicate(line):
                        return line
                if self._reader.done():
                    raise AssertionError("chat exited:\n" + "\n".join(self.lines))
                await asyncio.sleep(0.05)
        try:
            return await asyncio.wait_for(scan(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError("no such line in:\n" + "\n".join(self.lines)) from None

    async def type(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text.encode() + b"\n")
        await self.proc.stdin.drain()

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        await asyncio.gather(self._reader, return_exceptions=True)


async def test_12_chat_shows_recalled_and_deleted_flags_unknown_commands_and_numbers_read_receipts(flare, tmp_path):
    alice = await flare.client("alice")
    bob_phone = await flare.client("bob", "phone")
    for body in ("first secret", "second private", "third fine"):
        await alice.send(body, to="bob")
    stored = await alice.wait_count(lambda f: f.get("level") == "stored", 3)
    await bob_phone.wait_count(lambda f: f.get("type") == "message", 3)
    await alice.send_frame({"type": "recall", "msg_id": stored[0]["msg_id"]})
    await bob_phone.send_frame({"type": "delete", "msg_id": stored[1]["msg_id"]})
    await bob_phone.wait_count(lambda f: f.get("type") == "event", 2)
    chat = await Chat.start(flare.gateway_urls[0], flare.secret, tmp_path, "bob", "alice", device="new-laptop")
    try:
        await chat.wait_line(lambda line: "#3" in line and "third fine" in line)
        recalled = await chat.wait_line(lambda line: line.startswith("alice #1"))
        assert "(recalled)" in recalled and "first secret" not in "\n".join(chat.lines)
        await chat.wait_line(lambda line: "delete of #2 by bob" in line)
        assert "second private" not in "\n".join(chat.lines)
        await chat.type("/bogus hello")
        await chat.wait_line(lambda line: "unknown command /bogus" in line)
        await chat.type("hi alice")
        message = await alice.wait_for(lambda f: f.get("type") == "message" and f["sender_id"] == "bob")
        await alice.send_frame({"type": "read", "conversation_id": AB, "seq": message["seq"]})
        await chat.wait_line(lambda line: f"read up to #{message['seq']} by alice" in line)
        await asyncio.sleep(0.3)
        assert [m["body"] for m in alice.messages(AB) if m["sender_id"] == "bob"] == ["hi alice"]
        await chat.type("/quit")
        assert await asyncio.wait_for(chat.proc.wait(), 10) == 0
    finally:
        await chat.stop()


async def test_12_chat_ctrl_c_exits_at_once_without_a_traceback(flare, tmp_path):
    chat = await Chat.start(flare.gateway_urls[0], flare.secret, tmp_path, "bob", "alice")
    try:
        chat.proc.send_signal(signal.SIGINT)  # stdin stays open: nothing was typed
        code = await asyncio.wait_for(chat.proc.wait(), 5)
        await asyncio.wait_for(asyncio.shield(chat._reader), 5)
        assert code == 130, chat.lines
        assert not any("Traceback" in line for line in chat.lines), chat.lines
    finally:
        await chat.stop()


async def test_12_an_idle_chat_sends_heartbeats_and_is_not_cut_off(tmp_path):
    cfg = load_config(environ={}, data_dir=tmp_path / "flare")
    cfg.gateway.port = cfg.admin.port = cfg.controlplane.port = 0
    cfg.gateway.heartbeat_timeout_s = 3.0  # a silent connection is closed after 3 s
    monolith = Monolith(cfg)
    await monolith.start()
    alice = chat = keepalive = None
    try:
        alice = await WsClient(monolith.gateway_url, monolith.token_secret, "alice").connect()

        async def keep_alice_alive() -> None:  # the chat's peer; only the chat is left to itself
            while True:
                await asyncio.sleep(0.5)
                await alice.send_frame({"type": "heartbeat"})

        keepalive = asyncio.create_task(keep_alice_alive())
        chat = await Chat.start(monolith.gateway_url, monolith.token_secret, tmp_path, "bob", "alice")
        await asyncio.sleep(8)  # well past the timeout with nothing typed
        await chat.type("still here")
        message = await alice.wait_for(lambda f: f.get("type") == "message")
        assert message["body"] == "still here"
        assert not any("closed" in line for line in chat.lines), chat.lines
    finally:
        if keepalive is not None:
            keepalive.cancel()
        if chat is not None:
            await chat.stop()
        if alice is not None:
            await alice.close()
        await monolith.stop()
