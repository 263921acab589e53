"""message-router: the send flow and delivery (ARCHITECTURE §6).

send:    filter -> store.accept (STORED only after the log acks).
deliver: called by the store consumer with each persisted batch, in seq order per
         conversation: look up members and their routes, push one pre-serialized frame
         per device through its gateway, batched per gateway. Users with no online
         device go to the offline topic for the notification service.
acks:    a device ack advances its cursor and tells the sender DELIVERED (once per
         recipient user); a read receipt becomes a READ event and a `read` ack.
"""

from __future__ import annotations

import logging
import os
import random
from collections import OrderedDict, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from services.backends.cache import Cache
from services.backends.log import Log
from services.backends.messagedb import MessageDB
from services.common import codec
from services.common.config import RouterConfig
from services.common.errors import BackendUnavailable, Forbidden, InvalidInput, NotFound, RateLimited, Rejected
from services.common.metrics import ACK_DELIVERED, ACK_STORED, DELIVERY_FAILURES, MESSAGES_OUT
from services.common.model import AckLevel, Message, conversation_kind, now_ms
from services.common.retry import RetryPolicy
from services.session.client import SessionClient
from services.filter.client import FilterClient
from services.store.client import StoreClient
from services.store.service import Reservation

from .fanout import Fanout, MembershipCache

if TYPE_CHECKING:  # the gateway package imports the router's client: keep this one lazy
    from services.gateway.client import GatewayDirectory

__all__ = ["RouterService", "SendResult"]

log = logging.getLogger("flare.router")

_PENDING_LIMIT = 200_000  # messages awaiting DELIVERED; oldest forgotten beyond this


@dataclass(frozen=True, slots=True)
class SendResult:
    msg_id: int
    duplicate: bool
    body: object  # as stored (masked if a rule masked it)


@dataclass(slots=True)
class _Pending:
    msg_id: int
    sender_id: str
    client_msg_id: str
    created_at: int
    waiting: set[str]  # recipient users who have not acked yet


class RouterService:
    def __init__(
        self, *, filter: FilterClient, store: StoreClient, session: SessionClient,
        gateways: GatewayDirectory, db: MessageDB, log: Log, config: RouterConfig,
        membership: MembershipCache | None = None, shared_delivery: Cache | None = None,
    ) -> None:
        """`shared_delivery`: set in the split deployment, where a device's ack may reach
        another router instance than the one that delivered the message."""
        self._filter = filter
        self._store = store
        self._db = db
        self._cache = shared_delivery
        self._log = log
        self._config = config
        self._retry = RetryPolicy(
            max_attempts=config.max_attempts, base_delay=config.base_delay,
            max_delay=config.max_delay, multiplier=config.multiplier,
        )
        self.membership = membership or MembershipCache(db)
        self.fanout = Fanout(session=session, gateways=gateways, retry=self._retry)
        self._pending: OrderedDict[tuple[str, int], _Pending] = OrderedDict()
        # Test-only fault switch: drop 1 in N live deliveries (the message stays stored).
        drop = int(os.environ.get("FLARE_FAULT_DROP_DELIVERY", "0") or 0)
        self._drop_one_in = drop if drop > 0 else 0
        self._rng = random.Random(7)

    async def start(self) -> None:
        await self._log.create_topic(self._config.offline_topic, partitions=4)

    async def apply_config(self, kind: str, document: dict) -> int:
        """Control-plane documents this service consumes: `routing` (batch_size: deliveries
        per gateway push; conn_pool_size: gateway pushes in flight at once)."""
        from controlplane.documents import load_spec  # the schema the control plane validates

        if kind != "routing":
            raise InvalidInput(f"the router does not consume {kind!r} documents")
        routing = load_spec("routing", document)
        self.fanout.configure(batch_size=routing.batch_size, max_in_flight=routing.conn_pool_size)
        return 1

    # -- send ------------------------------------------------------------------------
    async def check_membership(self, sender_id: str, conversation_id: str) -> None:
        kind = conversation_kind(conversation_id)
        members = await self.membership.members(conversation_id)
        if sender_id not in members:
            what = "one of the two users" if kind == "c2c" else "a member of the group"
            raise InvalidInput(f"{sender_id} is not {what} of {conversation_id}")

    async def admit(self, message: Message) -> Reservation:
        """Before `received`: the sender must be a member, and (sender, client_msg_id) gets
        its msg_id (message.msg_id if new, the original one for a resend)."""
        await self.check_membership(message.sender_id, message.conversation_id)
        return await self._store.reserve(message)

    async def send(self, message: Message) -> SendResult:
        """Filter, then log durably. Raises Rejected / RateLimited / TooLarge / BackendUnavailable."""
        await self.check_membership(message.sender_id, message.conversation_id)
        verdict = await self._filter.check(message)
        if verdict.action == "block":
            raise Rejected(verdict.reason or "message blocked by a filter rule", rule=verdict.rule)
        if verdict.action == "rate_limited":
            raise RateLimited(verdict.reason or "too many messages", retry_after=verdict.retry_after)
        if verdict.action == "mask":
            message.body = verdict.body
        result = await self._store.accept(message)
        ACK_STORED.observe(max(0, now_ms() - message.created_at) / 1000)
        return SendResult(result.msg_id, result.duplicate, message.body)

    # -- deliver -------------------------------------------------------------------------
    async def deliver(self, messages: Sequence[Message]) -> None:
        """Push a persisted batch (seq order per conversation) to every member device."""
        by_conversation: dict[str, list[Message]] = defaultdict(list)
        for message in messages:
            by_conversation[message.conversation_id].append(message)
        members_of = {c: await self.membership.members(c) for c in by_conversation}
        users = sorted({u for ms in members_of.values() for u in ms})
        routes = await self.fanout.routes(users)
        per_gateway: dict[str, list[tuple[str, bytes]]] = defaultdict(list)
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
                        per_gateway[session.gateway_id].append((session.connection_id, frame))
        gone = await self.fanout.push_many(per_gateway) if per_gateway else []
        MESSAGES_OUT.inc(sum(len(d) for d in per_gateway.values()))
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
            message.msg_id, message.sender_id, message.client_msg_id, message.created_at, set(recipients),
        )
        while len(self._pending) > _PENDING_LIMIT:
            self._pending.popitem(last=False)

    # -- acks from devices -------------------------------------------------------------
    async def on_delivered(self, user_id: str, conversation_id: str, seqs: Sequence[int]) -> None:
        """A device of user_id has these messages: tell each sender DELIVERED (once per user)."""
        frames: dict[str, list[bytes]] = defaultdict(list)
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
            ACK_DELIVERED.observe(max(0, now - pending.created_at) / 1000)
            frames[pending.sender_id].append(self._delivered_frame(
                pending.client_msg_id, pending.msg_id, conversation_id, seq, user_id))
        if unknown and self._cache is not None:
            await self._delivered_elsewhere(user_id, conversation_id, unknown, frames)
        if frames:
            await self.fanout.to_users(frames)

    @staticmethod
    def _delivered_frame(client_msg_id: str, msg_id: int, conversation_id: str, seq: int, user_id: str) -> bytes:
        return codec.dumps({
            "type": "ack", "level": AckLevel.DELIVERED.wire, "client_msg_id": client_msg_id,
            "msg_id": str(msg_id), "conversation_id": conversation_id, "seq": seq, "user_id": user_id,
        })

    async def _delivered_elsewhere(self, user_id: str, conversation_id: str, seqs: list[int],
                                   frames: dict[str, list[bytes]]) -> None:
        """Acks for messages another router instance delivered (split deployment): the
        MessageDB says who sent them, and a cache key keeps DELIVERED once per user."""
        low, high = min(seqs), max(seqs)
        if high - low > 1000:
            return
        wanted = set(seqs)
        for message in await self._db.messages_after(conversation_id, low - 1, limit=high - low + 1):
            if message.seq not in wanted or message.sender_id == user_id:
                continue
            first = await self._cache.set_nx(f"delivered:{conversation_id}:{message.seq}:{user_id}", b"1", ttl=3600)
            if first:
                frames[message.sender_id].append(self._delivered_frame(
                    message.client_msg_id, message.msg_id, conversation_id, message.seq, user_id))

    # -- groups --------------------------------------------------------------------------
    async def create_group(self, creator_id: str, conversation_id: str, members: Sequence[str]) -> list[str]:
        """Create the group, or add members to it if the creator already belongs to it."""
        existing = [str(m) for m in await self._db.members(conversation_id)]
        if existing and creator_id not in existing:
            raise Forbidden(f"{conversation_id} exists and {creator_id} is not a member")
        await self._db.add_members(conversation_id, list(members))
        self.membership.invalidate(conversation_id)
        return [str(m) for m in await self._db.members(conversation_id)]

    async def join_group(self, user_id: str, conversation_id: str) -> None:
        if not await self._db.members(conversation_id):
            raise NotFound(f"{conversation_id} does not exist")
        await self._db.add_members(conversation_id, [user_id])
        self.membership.invalidate(conversation_id)

    async def leave_group(self, user_id: str, conversation_id: str) -> None:
        await self._db.remove_members(conversation_id, [user_id])
        self.membership.invalidate(conversation_id)
