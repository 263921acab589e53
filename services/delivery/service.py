"""Delivery: persisted messages to every member device, and DELIVERED back to senders.

deliver:  the store hands over each persisted batch, in seq order per conversation, and
          awaits it before the next (so per-conversation order holds on the way out):
          look up members and their routes, push one pre-serialized frame per message to
          every member device, batched per gateway. Users with no online device go to
          the offline topic for the notification service.
DELIVERED: a device ack tells the sending device DELIVERED, once per recipient user. The message
          is remembered as pending when delivered; in the split deployment the ack may
          reach another router instance, which then asks the MessageDB who sent it and
          keeps "once" with a shared cache marker (keys.delivered_key).
"""

from __future__ import annotations

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
from services.common.errors import BackendUnavailable
from services.common.metrics import ACK_DELIVERED, DELIVERY_FAILURES, MESSAGES_OUT
from services.common.model import AckLevel, Message, now_ms
from services.common.retry import RetryPolicy

from .fanout import Fanout, Routes
from .groups import Groups
from .keys import delivered_key
from .membership import Membership
from .pressure import Backlog
from .seam import GatewayDirectory, Push

__all__ = ["Delivery"]

log = logging.getLogger("flare.delivery")

_PENDING_LIMIT = 200_000  # messages awaiting DELIVERED; oldest forgotten beyond this


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
        self.backlog = Backlog()
        self._pending: OrderedDict[tuple[str, int], _Pending] = OrderedDict()
        # Test-only fault switch: drop 1 in N live deliveries (the message stays stored).
        drop = int(os.environ.get("FLARE_FAULT_DROP_DELIVERY", "0") or 0)
        self._drop_one_in = drop if drop > 0 else 0
        self._rng = random.Random(7)

    async def start(self) -> None:
        await self._log.create_topic(self._config.offline_topic, partitions=4)

    # -- deliver -------------------------------------------------------------------------
    async def deliver(self, messages: Sequence[Message]) -> None:
        """Push a persisted batch (seq order per conversation) to every member device."""
        by_conversation: dict[str, list[Message]] = defaultdict(list)
        for message in messages:
            by_conversation[message.conversation_id].append(message)
        members_of = {c: await self.membership.members(c) for c in by_conversation}
        users = sorted({u for ms in members_of.values() for u in ms})
        routes = await self.fanout.routes(users)
        per_gateway: dict[str, list[Push]] = defaultdict(list)
        offline: list[tuple[str, Message]] = []
        for conversation_id, batch in by_conversation.items():
            members = members_of[conversation_id]
            for message in batch:
                frame = codec.dumps({"type": "message", **message.to_wire()})
                recipients = {u for u in members if u != message.sender_id}
                self._remember_pending(message, recipients)
                for user in members:
                    sessions = routes.get(user, [])
                    if not sessions and user != message.sender_id:
                        offline.append((user, message))
                    for session in sessions:
                        if self._drop_one_in and self._rng.randrange(self._drop_one_in) == 0:
                            DELIVERY_FAILURES.labels("fault_injected").inc()
                            continue
                        per_gateway[session.gateway_id].append(
                            Push(session.connection_id, conversation_id, message.seq, frame))
        gone = await self.fanout.push_many(per_gateway) if per_gateway else []
        self.backlog.delivered(messages)
        MESSAGES_OUT.inc(sum(len(p) for p in per_gateway.values()))
        if gone:
            DELIVERY_FAILURES.labels("connection_gone").inc(len(gone))
        if offline:
            await self._to_offline(offline)

    async def _to_offline(self, offline: list[tuple[str, Message]]) -> None:
        records = [
            (user.encode(), codec.dumps({"user_id": user, "message": message.to_wire()}))
            for user, message in offline
        ]
        try:
            await self._log.produce_batch(self._config.offline_topic, records)
        except BackendUnavailable:
            log.warning("offline topic unavailable; %d push notifications skipped", len(records))

    def _remember_pending(self, message: Message, recipients: set[str]) -> None:
        if not recipients:
            return
        self._pending[(message.conversation_id, message.seq)] = _Pending(
            message.msg_id, message.sender_id, message.sender_device, message.client_msg_id, message.created_at,
            set(recipients),
        )
        while len(self._pending) > _PENDING_LIMIT:
            self._pending.popitem(last=False)

    # -- DELIVERED -----------------------------------------------------------------------
    async def on_delivered(self, user_id: str, conversation_id: str, seqs: Sequence[int]) -> None:
        """A device of user_id has these messages: tell each sender DELIVERED (once per user)."""
        # Keyed by the device that sent each message: only it is told (docs/protocol.md §6).
        frames: dict[tuple[str, str], list[bytes]] = defaultdict(list)
        now = now_ms()
        unknown: list[int] = []
        for seq in seqs:
            pending = self._pending.get((conversation_id, seq))
            if pending is None:
                unknown.append(seq)
                continue
            if user_id not in pending.waiting:
                continue
            pending.waiting.discard(user_id)
            if not pending.waiting:
                del self._pending[(conversation_id, seq)]
            # Split deployment: another device of this user may have acked through another
            # router instance, which knows the message only from the MessageDB and keeps
            # "once" with the shared marker; this path must take the marker too.
            if self._shared is not None and not await self._shared.set_nx(
                    delivered_key(conversation_id, seq, user_id), b"1", ttl=3600):
                continue
            ACK_DELIVERED.observe(max(0, now - pending.created_at) / 1000)
            frames[(pending.sender_id, pending.sender_device)].append(_delivered_frame(
                pending.client_msg_id, pending.msg_id, conversation_id, seq, user_id))
        if unknown and self._shared is not None:
            await self._delivered_elsewhere(user_id, conversation_id, unknown, frames)
        if frames:
            await self.fanout.to_devices(frames)

    async def _delivered_elsewhere(self, user_id: str, conversation_id: str, seqs: list[int],
                                   frames: dict[tuple[str, str], list[bytes]]) -> None:
        """Acks for messages another router instance delivered (split deployment): the
        MessageDB says who sent them, and a cache key keeps DELIVERED once per user."""
        assert self._shared is not None
        low, high = min(seqs), max(seqs)
        if high - low > 1000:
            return
        wanted = set(seqs)
        for message in await self._db.messages_after(conversation_id, low - 1, limit=high - low + 1):
            if message.seq not in wanted or message.sender_id == user_id:
                continue
            first = await self._shared.set_nx(delivered_key(conversation_id, message.seq, user_id), b"1", ttl=3600)
            if first:
                frames[(message.sender_id, message.sender_device)].append(_delivered_frame(
                    message.client_msg_id, message.msg_id, conversation_id, message.seq, user_id))


def _delivered_frame(client_msg_id: str, msg_id: int, conversation_id: str, seq: int, user_id: str) -> bytes:
    return codec.dumps({
        "type": "ack", "level": AckLevel.DELIVERED.wire, "client_msg_id": client_msg_id,
        "msg_id": str(msg_id), "conversation_id": conversation_id, "seq": seq, "user_id": user_id,
    })
