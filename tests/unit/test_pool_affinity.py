"""Split deployment: a conversation's router calls go to one router instance (its owner).

The router that pushed a conversation's messages must also get their acks: only its
pending set knows who sent them without asking the MessageDB (services/wiring/discovered.py,
ServicePool.owners). These tests drive the pooled router proxy over recording clients.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import grpc
import grpc.aio

from services.common.errors import BackendUnavailable
from services.common.model import Message
from services.wiring.discovered import ROUTER, Contract, Pooled

ROOT = Path(__file__).resolve().parents[2]


class _Topology:
    def __init__(self, ids: list[str]) -> None:
        self.ids = list(ids)
        self._listeners: list = []

    async def leave(self, instance_id: str) -> None:
        self.ids.remove(instance_id)
        for listener in self._listeners:  # as services.wiring.discovery.Topology does
            await listener()

    def instances(self, service: str) -> dict[str, str]:
        return {i: f"127.0.0.1:{i.rsplit('-', 1)[1]}" for i in self.ids} if service == "router" else {}

    def on_change(self, listener: Any) -> None:
        self._listeners.append(listener)


class _Router:
    """Records which instance got what; `down` instances cannot be reached."""

    down: set[str] = set()

    def __init__(self, address: str, log: list) -> None:
        self.address = address
        self._log = log

    async def _record(self, name: str, value: Any) -> None:
        if self.address in _Router.down:  # what a refused connection looks like to the pool
            cause = grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(),
                                         details="connection refused")
            raise BackendUnavailable("unreachable") from cause
        self._log.append((self.address, name, value))

    async def on_delivered(self, user_id: str, conversation_id: str, seqs: Any) -> None:
        await self._record("on_delivered", conversation_id)

    async def deliver(self, messages: Any) -> None:
        await self._record("deliver", [(m.conversation_id, m.seq) for m in messages])

    async def admit(self, message: Message) -> Any:
        await self._record("admit", message.conversation_id)

    async def send(self, message: Message) -> Any:
        await self._record("send", message.conversation_id)


def _proxy(topology: _Topology, log: list) -> Pooled:
    def client(address: str) -> Any:
        router = _Router(address, log)
        for name in ROUTER.calls:  # the methods this test does not drive
            if not hasattr(router, name):
                setattr(router, name, None)
        return router

    return Pooled(topology, Contract("router", ROUTER.protocol, client, ROUTER.calls))  # type: ignore[arg-type]


def _message(conversation: str, seq: int = 0) -> Message:
    return Message(msg_id=seq + 1, client_msg_id=f"c{seq}", conversation_id=conversation, sender_id="alice",
                   sender_device="phone", content_type="text", body={"text": "hi"}, created_at=1, seq=seq)


CONVERSATIONS = [f"group:g{i}" for i in range(60)]


async def _owners(proxy: Pooled, log: list) -> dict[str, str]:
    log.clear()
    for conversation in CONVERSATIONS:
        await proxy.on_delivered("bob", conversation, [1])
    return {value: address for address, _, value in log}


async def test_every_call_of_a_conversation_lands_on_one_instance_and_conversations_spread() -> None:
    log: list = []
    proxy = _proxy(_Topology(["router-1", "router-2", "router-3"]), log)
    owners = await _owners(proxy, log)
    assert await _owners(proxy, log) == owners  # not round-robin: the same instance again
    assert len(set(owners.values())) == 3  # and the 60 conversations use all three
    assert min(Counter(owners.values()).values()) >= 8
    log.clear()
    for conversation in CONVERSATIONS:
        await proxy.admit(_message(conversation))
        await proxy.send(_message(conversation))
    assert all(address == owners[value] for address, _, value in log)  # sends go there too


async def test_a_batch_is_split_by_owner_each_part_in_order_nothing_twice() -> None:
    log: list = []
    proxy = _proxy(_Topology(["router-1", "router-2", "router-3"]), log)
    owners = await _owners(proxy, log)
    batch = [_message(conversation, seq) for seq in range(1, 4) for conversation in CONVERSATIONS]
    log.clear()
    await proxy.deliver(batch)
    delivered: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for address, name, part in log:
        assert name == "deliver"
        delivered[address].extend(part)
    assert len(log) == 3  # one part per owner
    everything = [item for part in delivered.values() for item in part]
    assert sorted(everything) == sorted((m.conversation_id, m.seq) for m in batch)  # each once
    for address, part in delivered.items():
        assert {conversation for conversation, _ in part} == {c for c, a in owners.items() if a == address}
        for conversation in {c for c, _ in part}:
            assert [seq for c, seq in part if c == conversation] == [1, 2, 3]


async def test_when_an_instance_leaves_only_its_conversations_move() -> None:
    log: list = []
    topology = _Topology(["router-1", "router-2", "router-3"])
    proxy = _proxy(topology, log)
    before = await _owners(proxy, log)
    leaving = "127.0.0.1:2"
    await topology.leave("router-2")
    after = await _owners(proxy, log)
    for conversation, address in before.items():
        if address != leaving:
            assert after[conversation] == address
        else:
            assert after[conversation] != leaving


async def test_an_unreachable_owner_fails_over_to_the_same_next_instance_for_everyone() -> None:
    log: list = []
    proxy = _proxy(_Topology(["router-1", "router-2", "router-3"]), log)
    owners = await _owners(proxy, log)
    conversation = CONVERSATIONS[0]
    _Router.down = {owners[conversation]}
    try:
        log.clear()
        await proxy.on_delivered("bob", conversation, [1])
        await proxy.on_delivered("bob", conversation, [2])
        second = {address for address, _, _ in log}
        assert len(second) == 1 and owners[conversation] not in second
        other_log: list = []
        other = _proxy(_Topology(["router-1", "router-2", "router-3"]), other_log)
        await other.on_delivered("carol", conversation, [1])
        assert {address for address, _, _ in other_log} == second
    finally:
        _Router.down = set()


def test_the_owner_is_the_same_in_every_process() -> None:
    """Python salts str hashes per process; the gateway, store and router processes must
    still agree on each conversation's owner."""
    script = (
        "import asyncio, json, sys\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "from tests.unit.test_pool_affinity import _Topology, _proxy, _owners\n"
        "log = []\n"
        "print(json.dumps(asyncio.run(_owners(_proxy(_Topology(['router-1', 'router-2', 'router-3']), log), log))))\n"
    )
    answers = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run([sys.executable, "-c", script, str(ROOT)], env=env, capture_output=True, text=True,
                              timeout=60, cwd=ROOT)
        assert done.returncode == 0, done.stderr
        answers.append(json.loads(done.stdout))
    assert answers[0] == answers[1]
    assert len(set(answers[0].values())) == 3
