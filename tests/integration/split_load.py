"""Bounded chat load with real WebSocket clients, and the checks the fault tests make.

Users u0..uN-1 sit on the gateways round-robin; u<i> sends to u<i+1>, one message at a
time, resending the same client_msg_id (deduplicated by the store) until it is STORED —
as an app does on an error or a timeout. Afterwards `verify` syncs every conversation from
a fresh device and checks what the fault tests promise:

- nothing that reached STORED is lost (by client_msg_id; stored exactly once),
- seq is 1..N without gaps or repeats, each msg_id once,
- no device got the same message pushed twice.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from dataclasses import dataclass, field

from services.common.model import c2c_conversation_id
from tests.e2e.wsclient import WsClient

__all__ = ["ChatLoad", "LoadReport"]

_attempts = itertools.count(1)


@dataclass
class LoadReport:
    stored: dict[str, str] = field(default_factory=dict)  # client_msg_id -> msg_id (STORED acks)
    errors: Counter = field(default_factory=Counter)  # error codes seen on sends
    resends: int = 0
    synced: dict[str, list[dict]] = field(default_factory=dict)  # conversation -> messages
    renamed: dict[str, tuple[str, str]] = field(default_factory=dict)  # cmid -> (acked msg_id, stored msg_id)

    def summary(self) -> str:
        total = sum(len(m) for m in self.synced.values())
        return (f"stored={len(self.stored)} synced={total} resends={self.resends} errors={dict(self.errors)} "
                f"renamed={len(self.renamed)}")


class ChatLoad:
    def __init__(self, gateway_urls: list[str], secret: bytes, *, users: int = 6, interval_s: float = 0.05,
                 prefix: str = "u", ack_timeout_s: float = 20.0) -> None:
        self.urls = gateway_urls
        self.secret = secret
        self.users = [f"{prefix}{i}" for i in range(users)]
        self.interval_s = interval_s
        self.ack_timeout_s = ack_timeout_s
        self.clients: dict[str, WsClient] = {}
        self.report = LoadReport()
        self._stop = asyncio.Event()

    def conversations(self) -> dict[str, tuple[str, str]]:
        """conversation -> (sender, recipient)."""
        n = len(self.users)
        return {c2c_conversation_id(self.users[i], self.users[(i + 1) % n]): (self.users[i], self.users[(i + 1) % n])
                for i in range(n)}

    async def connect(self) -> None:
        for i, user in enumerate(self.users):
            self.clients[user] = await WsClient(self.urls[i % len(self.urls)], self.secret, user).connect()

    async def close(self) -> None:
        for client in self.clients.values():
            await client.close()

    async def run(self, *, duration_s: float, max_per_user: int = 400) -> None:
        """Send until `duration_s` has passed (or `max_per_user` each); every send ends STORED."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + duration_s
        n = len(self.users)

        async def sender(i: int) -> None:
            user, peer = self.users[i], self.users[(i + 1) % n]
            for k in range(max_per_user):
                if loop.time() >= deadline:
                    return
                await self._send_until_stored(user, peer, f"{user}-{k}")
                await asyncio.sleep(self.interval_s)

        await asyncio.gather(*(sender(i) for i in range(n)))

    async def _send_until_stored(self, user: str, peer: str, client_msg_id: str, *, attempts: int = 30) -> None:
        for attempt in range(attempts):
            client = self.clients[user]
            if client._reader is not None and client._reader.done():  # the gateway dropped us: reconnect
                self.clients[user] = client = await WsClient(client.url.split("?")[0], self.secret, user,
                                                             client.device).connect()
            ref = f"{client_msg_id}#{next(_attempts)}"  # acks and errors name the attempt, not just the id
            try:
                await client.send_frame({"type": "send", "id": ref, "client_msg_id": client_msg_id, "to": peer,
                                         "body": f"{client_msg_id} from {user}"})
                frame = await client.wait_for(
                    lambda f: f.get("ref") == ref and (f.get("type") == "error" or f.get("level") == "stored"),
                    timeout=self.ack_timeout_s)
            except (asyncio.TimeoutError, ConnectionError, OSError) as exc:
                self.report.errors[type(exc).__name__] += 1
            else:
                if frame.get("level") == "stored":
                    self.report.stored[client_msg_id] = frame["msg_id"]
                    return
                self.report.errors[frame.get("code", "?")] += 1
            self.report.resends += 1
            await asyncio.sleep(min(0.2 * (attempt + 1), 2.0))
        raise AssertionError(f"{client_msg_id} never STORED after {attempts} attempts: {self.report.summary()}")

    async def verify(self, *, timeout_s: float = 90.0) -> LoadReport:
        """Sync every conversation from a fresh device until every STORED message is there.

        Messages are matched by client_msg_id, the client's idempotency key; a resend must
        have been acked STORED with the msg_id that was stored (docs/protocol.md §6: the
        dedup key is reserved before the produce), so `LoadReport.renamed` must stay empty.
        """
        conversations = self.conversations()
        sender_of = {sender: c for c, (sender, _) in conversations.items()}
        expected: dict[str, set[str]] = {c: set() for c in conversations}
        for cmid in self.report.stored:
            expected[sender_of[cmid.rsplit("-", 1)[0]]].add(cmid)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        audit = itertools.count(1)
        while True:
            missing = {}
            for conversation, (_, recipient) in conversations.items():
                got = await self._sync_from_scratch(recipient, f"audit{next(audit)}", conversation)
                self.report.synced[conversation] = got
                lost = expected[conversation] - {m["client_msg_id"] for m in got}
                if lost:
                    missing[conversation] = sorted(lost)[:5]
            if not missing:
                break
            if loop.time() > deadline:
                raise AssertionError(f"STORED messages missing after {timeout_s:.0f}s: {missing}; "
                                     f"{self.report.summary()}")
            await asyncio.sleep(1.0)
        for conversation, messages in self.report.synced.items():
            seqs = [m["seq"] for m in messages]
            assert seqs == list(range(1, len(seqs) + 1)), f"{conversation}: seq not gap-free: {seqs}"
            assert len({m["msg_id"] for m in messages}) == len(messages), f"{conversation}: a msg_id twice"
            assert len({m["client_msg_id"] for m in messages}) == len(messages), f"{conversation}: stored twice"
            for m in messages:
                acked = self.report.stored.get(m["client_msg_id"])
                if acked is not None and acked != m["msg_id"]:
                    self.report.renamed[m["client_msg_id"]] = (acked, m["msg_id"])
        assert not self.report.renamed, f"resends acked with another msg_id than the stored one: {self.report.renamed}"
        for user, client in self.clients.items():
            pushed = Counter((f["conversation_id"], f["seq"]) for f in client.messages())
            twice = {key: [f["msg_id"] for f in client.messages() if (f["conversation_id"], f["seq"]) == key]
                     for key, count in pushed.items() if count > 1}
            assert not twice, f"{user} got messages pushed more than once (key: msg_ids): {twice}"
        return self.report

    async def _sync_from_scratch(self, user: str, device: str, conversation: str) -> list[dict]:
        client = await WsClient(self.urls[0], self.secret, user, device, auto_ack=False).connect()
        try:
            got: list[dict] = []
            cursor = 0
            while True:
                ref = f"sync-{next(_attempts)}"
                await client.send_frame({"type": "sync", "id": ref, "cursors": {conversation: {"seq": cursor}}})
                result = await client.wait_for(lambda f: f.get("ref") == ref and f.get("type") in ("sync_result",
                                                                                                    "error"))
                if result["type"] == "error":  # e.g. unavailable while a backend recovers: ask again
                    self.report.errors[f"sync:{result.get('code')}"] += 1
                    await asyncio.sleep(0.5)
                    continue
                news = result["conversations"].get(conversation)
                if not news or not news["messages"]:
                    return got
                got.extend(news["messages"])
                cursor = news["messages"][-1]["seq"]
                if not news["has_more"]:
                    return got
        finally:
            await client.close()
