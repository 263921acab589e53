"""Delivery: persisted messages to every member device, and DELIVERED back to senders.

deliver:  the store hands over each persisted batch, in seq order per conversation, and
          awaits it before the next (so per-conversation order holds on the way out, and
          a slow fan-out slows the consumer rather than piling up). Members are handled
          `fanout_chunk` users at a time: look up their routes, push one pre-serialized
          frame per message to each of their devices, batched per gateway, await that,
          then let the event loop run everyone else before the next chunk — a 5,000-member
          group no longer holds the loop for the whole of it. Members with no online
          device go to the offline topic, one record per message (offline.py).
DELIVERED: a device ack tells the sending device DELIVERED, once per recipient user. The message
          is remembered as pending when delivered (bounded by bytes, and only for messages
          with at most `delivered_max_recipients` recipients); in the split deployment the
          ack may reach another router instance, which then asks the MessageDB who sent it
          and keeps "once" with a shared cache marker (keys.delivered_key).
budget:   each sender's member deliveries are bounded (budget.py); the router charges a
          send before it is stored.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from collections import OrderedDict, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from services.backends.cache import Cache
from services.backends.log import Log
from services.backends.messagedb import MessageDB
from services.common import codec
from services.common.config import RouterConfig
from services.common.bounds import ENTRY_OVERHEAD, ByteBudget
from services.common.errors import FlareError, RateLimited
from services.common.metrics import ACK_DELIVERED, DELIVERY_FAILURES, MESSAGES_OUT
from services.common.model import AckLevel, Message, now_ms
from services.common.retry import RetryPolicy

from .budget import FanoutBudget
from .fanout import Fanout, Routes
from .groups import Groups
from .keys import delivered_key
from .membership import Membership
from .offline import OfflineTopic
from .pressure import Backlog
from .seam import GatewayDirectory, Push

__all__ = ["Delivery"]

log = logging.getLogger("flare.delivery")

_WAITING_COST = 80  # bytes per recipient in a pending message's waiting set


@dataclass(slots=True)
class _Pending:
    msg_id: int
    sender_id: str
    sender_device: str
    client_msg_id: str
    created_at: int
    waiting: set[str]  # recipient users who have not acked yet


class Delivery:
    """A DeliveryClient in-process (services.delivery.client); the router serves it over gRPC."""

    def __init__(
        self, *, session: Routes, gateways: GatewayDirectory, db: MessageDB, log: Log, config: RouterConfig,
        membership: Membership | None = None, shared: Cache | None = None,
    ) -> None:
        """`shared`: set in the split deployment, where a device's ack may reach another
        router instance than the one that delivered the message."""
        self._db = db
        self._log = log
        self._config = config
        self._shared = shared
        retry = RetryPolicy(max_attempts=config.max_attempts, base_delay=config.base_delay,
                            max_delay=config.max_delay, multiplier=config.multiplier)
        self.membership = membership or Membership(db)
        self.fanout = Fanout(session=session, gateways=gateways, retry=retry)
        self.groups = Groups(db=db, membership=self.membership, fanout=self.fanout)
        self.backlog = Backlog(max_lag_ms=config.shed_delivery_lag_ms, max_queue_ms=config.shed_queue_ms,
                               min_backlog=config.shed_min_backlog)
        self._pending: OrderedDict[tuple[str, int], _Pending] = OrderedDict()
        self.pending_budget = ByteBudget("pending_delivered", config.pending_delivered_bytes)
        # Split only: messages whose every recipient user has been told DELIVERED. The acks
        # that keep coming for them (a user's other devices, the sender's own) need
        # nothing; without this a split router took each for "delivered by another
        # instance" and asked the MessageDB and the shared cache, two round trips per ack
        # (40 % of its CPU). The monolith drops unknown acks anyway.
        self._done: OrderedDict[tuple[str, int], None] = OrderedDict()
        self.done_budget = ByteBudget("delivered_done", max(1 << 20, config.pending_delivered_bytes // 8))
        self.budget = FanoutBudget(burst=config.fanout_budget, per_s=config.fanout_budget_per_s)
        self.offline = OfflineTopic(log, config)
        # Test-only fault switch: drop 1 in N live deliveries (the message stays stored).
        drop = int(os.environ.get("FLARE_FAULT_DROP_DELIVERY", "0") or 0)
        self._drop_one_in = drop if drop > 0 else 0
        self._rng = random.Random(7)

    async def start(self) -> None:
        await self.offline.start()

    async def stop(self) -> None:
        await self.offline.stop()

    def problems(self) -> list[str]:
        return self.offline.problems()

    def charge(self, sender_id: str, recipients: int) -> None:
        """Take a message to `recipients` users from the sender's fan-out budget, or raise
        RateLimited (before the message is stored)."""
        retry_after = self.budget.charge(sender_id, max(1, recipients))
        if retry_after is None:
            return
        if retry_after == float("inf"):
            raise RateLimited(f"a message to {recipients} recipients is over the fan-out budget of "
                              f"{self.budget.burst} deliveries", retry_after=None)
        raise RateLimited(f"fan-out budget used up: {recipients} deliveries fit in {retry_after:.1f}s",
                          retry_after=round(retry_after, 3))

    # -- deliver -------------------------------------------------------------------------
    async def deliver(self, messages: Sequence[Message]) -> None:
        """Push a persisted batch (seq order per conversation) to every member device."""
        by_conversation: dict[str, list[Message]] = defaultdict(list)
        for message in messages:
            by_conversation[message.conversation_id].append(message)
        frames: dict[str, list[tuple[Message, bytes]]] = {}
        member_of: dict[str, list[str]] = defaultdict(list)  # user -> conversations of this batch
        offline: dict[str, list[str]] = {}  # conversation -> its members with no device online
        for conversation_id, batch in by_conversation.items():
            members = await self.membership.members(conversation_id)
            frames[conversation_id] = [(m, codec.dumps({"type": "message", **m.to_wire()})) for m in batch]
            offline[conversation_id] = []
            for message in batch:
                self._remember_pending(message, members)
            for user in members:
                member_of[user].append(conversation_id)
        users = list(member_of)
        chunk = self._config.fanout_chunk
        for start in range(0, len(users), chunk):
            if start:
                await asyncio.sleep(0)  # everyone else's frames, acks and sends run here
            await self._deliver_to(users[start:start + chunk], member_of, frames, offline)
        # Handed to the gateways (every chunk, or nobody online): the load shedder's backlog.
        self.backlog.delivered(messages)
        for conversation_id, absent in offline.items():
            if not absent:
                continue
            for message, _ in frames[conversation_id]:
                recipients = [u for u in absent if u != message.sender_id]
                if recipients:
                    await self.offline.write(message, recipients)

    async def _deliver_to(self, users: list[str], member_of: dict[str, list[str]],
                          frames: dict[str, list[tuple[Message, bytes]]], offline: dict[str, list[str]]) -> None:
        routes = await self.fanout.routes(users)
        per_gateway: dict[str, list[Push]] = defaultdict(list)
        for user in users:
            sessions = routes.get(user, [])
            if not sessions:
                for conversation_id in member_of[user]:
                    offline[conversation_id].append(user)
                continue
            for conversation_id in member_of[user]:
                for message, frame in frames[conversation_id]:
                    for session in sessions:
                        if self._drop_one_in and self._rng.randrange(self._drop_one_in) == 0:
                            DELIVERY_FAILURES.labels("fault_injected").inc()
                            continue
                        per_gateway[session.gateway_id].append(
                            Push(session.connection_id, conversation_id, message.seq, frame))
        if not per_gateway:
            return
        # Awaited before the next chunk: a gateway that is slow to take them slows this
        # fan-out (and the store consumer behind it) instead of queueing without end.
        gone = await self.fanout.push_many(per_gateway)
        MESSAGES_OUT.inc(sum(len(p) for p in per_gateway.values()))
        if gone:
            DELIVERY_FAILURES.labels("connection_gone").inc(len(gone))

    def _remember_pending(self, message: Message, members: Sequence[str]) -> None:
        recipients = len(members) - (message.sender_id in members)
        if not recipients or recipients > self._config.delivered_max_recipients:
            return
        waiting = {u for u in members if u != message.sender_id}
        key = (message.conversation_id, message.seq)
        old = self._pending.pop(key, None)
        if old is not None:
            self.pending_budget.used -= _pending_cost(old)
        pending = _Pending(message.msg_id, message.sender_id, message.sender_device, message.client_msg_id,
                           message.created_at, waiting)
        self._pending[key] = pending
        self.pending_budget.used += _pending_cost(pending)
        while self.pending_budget.over() and self._pending:
            _, dropped = self._pending.popitem(last=False)
            self.pending_budget.used -= _pending_cost(dropped)
            self.pending_budget.evictions += 1

    # -- DELIVERED -----------------------------------------------------------------------
    async def on_delivered(self, user_id: str, conversation_id: str, seqs: Sequence[int]) -> None:
        """A device of user_id has these messages: tell each sender DELIVERED (once per user)."""
        await self.on_delivered_many([(user_id, conversation_id, seqs)])

    async def on_delivered_many(self, reports: Sequence[tuple[str, str, Sequence[int]]]) -> None:
        """on_delivered for each (user_id, conversation_id, seqs), with one push of all the
        DELIVERED frames: a gateway worker reports a tick's acks at once, and one push per
        report was a task, a route lookup and a channel record each (~6 a message)."""
        # Keyed by the device that sent each message: only it is told (docs/protocol.md §6).
        frames: dict[tuple[str, str], list[bytes]] = defaultdict(list)
        now = now_ms()
        for user_id, conversation_id, seqs in reports:
            try:
                await self._told(user_id, conversation_id, seqs, now, frames)
            except FlareError:  # the shared marker is away (split): these senders miss a DELIVERED
                log.warning("could not report DELIVERED for %s in %s", user_id, conversation_id, exc_info=True)
        if frames:
            await self.fanout.to_devices(frames)

    async def _told(self, user_id: str, conversation_id: str, seqs: Sequence[int], now: int,
                    frames: dict[tuple[str, str], list[bytes]]) -> None:
        """Add to `frames` the DELIVERED frames these acks earn their senders."""
        unknown: list[int] = []
        told: list[tuple[int, _Pending]] = []
        for seq in seqs:
            pending = self._pending.get((conversation_id, seq))
            if pending is None:
                if (conversation_id, seq) not in self._done:
                    unknown.append(seq)
                continue
            if user_id not in pending.waiting:
                continue
            pending.waiting.discard(user_id)
            self.pending_budget.used -= _WAITING_COST
            if not pending.waiting:
                del self._pending[(conversation_id, seq)]
                self.pending_budget.used -= ENTRY_OVERHEAD
                if self._shared is not None:  # only the split answers unknown acks
                    self._remember_done(conversation_id, seq)
            told.append((seq, pending))
        if told and self._shared is not None:
            # Split deployment: another device of this user may have acked through another
            # router instance, which knows the message only from the MessageDB and keeps
            # "once" with the shared marker; this path must take the marker too (one
            # round trip for the whole ack, not one per seq).
            firsts = await self._shared.set_nx_many(
                [delivered_key(conversation_id, seq, user_id) for seq, _ in told], b"1", ttl=3600)
            told = [entry for entry, first in zip(told, firsts) if first]
        for seq, pending in told:
            ACK_DELIVERED.observe(max(0, now - pending.created_at) / 1000)
            frames[(pending.sender_id, pending.sender_device)].append(_delivered_frame(
                pending.client_msg_id, pending.msg_id, conversation_id, seq, user_id))
        if unknown and self._shared is not None:
            await self._delivered_elsewhere(user_id, conversation_id, unknown, frames)

    def _remember_done(self, conversation_id: str, seq: int) -> None:
        if (conversation_id, seq) in self._done:  # delivered again after a restart: counted once
            return
        self._done[(conversation_id, seq)] = None
        self.done_budget.used += ENTRY_OVERHEAD + len(conversation_id)
        while self.done_budget.over() and self._done:
            (old_conversation, _), _ = self._done.popitem(last=False)
            self.done_budget.used -= ENTRY_OVERHEAD + len(old_conversation)
            self.done_budget.evictions += 1

    async def _delivered_elsewhere(self, user_id: str, conversation_id: str, seqs: list[int],
                                   frames: dict[tuple[str, str], list[bytes]]) -> None:
        """Acks for messages another router instance delivered (split deployment): the
        MessageDB says who sent them, and a cache key keeps DELIVERED once per user."""
        assert self._shared is not None
        low, high = min(seqs), max(seqs)
        if high - low > 1000:
            return
        members = await self.membership.members(conversation_id)
        if len(members) - 1 > self._config.delivered_max_recipients:
            return  # no DELIVERED for a group this big (docs/protocol.md), as _remember_pending
        wanted = set(seqs)
        found = [message for message in await self._db.messages_after(conversation_id, low - 1, limit=high - low + 1)
                 if message.seq in wanted and message.sender_id != user_id]
        if not found:
            return
        firsts = await self._shared.set_nx_many(
            [delivered_key(conversation_id, message.seq, user_id) for message in found], b"1", ttl=3600)
        for message, first in zip(found, firsts):
            if first:
                frames[(message.sender_id, message.sender_device)].append(_delivered_frame(
                    message.client_msg_id, message.msg_id, conversation_id, message.seq, user_id))


def _pending_cost(pending: _Pending) -> int:
    return ENTRY_OVERHEAD + _WAITING_COST * len(pending.waiting)


def _delivered_frame(client_msg_id: str, msg_id: int, conversation_id: str, seq: int, user_id: str) -> bytes:
    return codec.dumps({
        "type": "ack", "level": AckLevel.DELIVERED.wire, "client_msg_id": client_msg_id,
        "msg_id": str(msg_id), "conversation_id": conversation_id, "seq": seq, "user_id": user_id,
    })
