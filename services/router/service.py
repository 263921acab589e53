"""message-router: the send flow, and the entry to delivery and groups (ARCHITECTURE §6).

send:    membership -> filter -> store.accept (STORED only after the log acks).
deliver: the store's hand-off of each persisted batch, over gRPC (the Deliver RPC) in
         the split deployment; services.delivery does the work.
acks:    a device ack tells the sender DELIVERED (services.delivery, once per recipient).
groups:  roles, join policy, history rule (services.delivery.groups).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from services.common.documents import load_spec
from services.common.errors import InvalidInput, RateLimited, Rejected
from services.common.metrics import ACK_STORED, STAGE_ACCEPT, STAGE_ADMIT, STAGE_FILTER
from services.common.model import Message, now_ms
from services.delivery import Delivery, Fanout, Membership
from services.filter.client import FilterClient
from services.store.client import StoreClient
from services.store.types import Reservation

from .client import admit_then_send
from .types import GroupInfo, SendResult

__all__ = ["RouterService"]


class RouterService:
    """Satisfies RouterClient (services.router.client) in-process."""

    def __init__(self, *, filter: FilterClient, store: StoreClient, delivery: Delivery) -> None:
        self._filter = filter
        self._store = store
        self.delivery = delivery

    @property
    def membership(self) -> Membership:
        return self.delivery.membership

    @property
    def fanout(self) -> Fanout:
        return self.delivery.fanout

    async def start(self) -> None:
        await self.delivery.start()

    async def stop(self) -> None:
        await self.delivery.stop()

    def problems(self) -> list[str]:
        return self.delivery.problems()

    async def apply_config(self, kind: str, document: dict) -> int:
        """Control-plane documents this service consumes: `routing` (batch_size: deliveries
        per gateway push; conn_pool_size: gateway pushes in flight at once)."""
        if kind != "routing":
            raise InvalidInput(f"the router does not consume {kind!r} documents")
        routing = load_spec("routing", document)
        self.fanout.configure(batch_size=routing.batch_size, max_in_flight=routing.conn_pool_size)
        return 1

    # -- send ------------------------------------------------------------------------
    async def admit(self, message: Message) -> Reservation:
        """Before `received`: the sender must be a member, and (sender, client_msg_id) gets
        its msg_id (message.msg_id if new, the original one for a resend)."""
        started = time.perf_counter()
        await self.membership.require_sender(message.sender_id, message.conversation_id)
        reservation = await self._store.reserve(message)
        STAGE_ADMIT.observe(time.perf_counter() - started)
        return reservation

    async def send(self, message: Message) -> SendResult:
        """Filter, then log durably. Raises Rejected / RateLimited / TooLarge / BackendUnavailable,
        and Busy when delivery is too far behind to take it (services.delivery.pressure)."""
        backlog = self.delivery.backlog
        backlog.check()
        await self.membership.require_sender(message.sender_id, message.conversation_id)
        members = await self.membership.members(message.conversation_id)  # cached by require_sender
        started = time.perf_counter()
        verdict = await self._filter.check(message)
        STAGE_FILTER.observe(time.perf_counter() - started)
        if verdict.action == "block":
            raise Rejected(verdict.reason or "message blocked by a filter rule", rule=verdict.rule)
        if verdict.action == "rate_limited":
            raise RateLimited(verdict.reason or "too many messages", retry_after=verdict.retry_after)
        if verdict.action == "mask":
            message.body = verdict.body
        self.delivery.charge(message.sender_id, len(members) - 1)  # RateLimited past the sender's budget
        started = time.perf_counter()
        result = await self._store.accept(message)
        STAGE_ACCEPT.observe(time.perf_counter() - started)
        if not result.duplicate:
            backlog.admitted()
        ACK_STORED.observe(max(0, now_ms() - message.created_at) / 1000)
        return SendResult(result.msg_id, result.duplicate, message.body)

    async def submit(self, message: Message, admitted: Callable[[Reservation], None]) -> SendResult:
        """admit, `admitted`, send: across the worker channel one call instead of two
        (admitted's value goes back as the call's progress), which takes a round trip off
        every send's path (bench/results/2026-12-03b)."""
        return await admit_then_send(self, message, admitted)

    # -- delivery --------------------------------------------------------------------
    async def deliver(self, messages: Sequence[Message]) -> None:
        await self.delivery.deliver(messages)

    async def on_delivered(self, user_id: str, conversation_id: str, seqs: Sequence[int]) -> None:
        await self.delivery.on_delivered(user_id, conversation_id, seqs)

    async def on_delivered_many(self, reports: Sequence[tuple[str, str, Sequence[int]]]) -> None:
        """on_delivered for a tick's reports at once (a gateway worker's, over its channel)."""
        await self.delivery.on_delivered_many(reports)

    # -- groups ----------------------------------------------------------------------
    async def create_group(self, creator_id: str, conversation_id: str, members: Sequence[str], *,
                           join_policy: str = "invite", history: str = "joined") -> GroupInfo:
        return await self.delivery.groups.create(creator_id, conversation_id, members,
                                                 join_policy=join_policy or "invite", history=history or "joined")

    async def join_group(self, user_id: str, conversation_id: str) -> None:
        await self.delivery.groups.join(user_id, conversation_id)

    async def leave_group(self, user_id: str, conversation_id: str) -> None:
        await self.delivery.groups.leave(user_id, conversation_id)

    async def add_members(self, actor_id: str, conversation_id: str, user_ids: Sequence[str]) -> list[str]:
        return await self.delivery.groups.add(actor_id, conversation_id, user_ids)

    async def remove_members(self, actor_id: str, conversation_id: str, user_ids: Sequence[str]) -> list[str]:
        return await self.delivery.groups.remove(actor_id, conversation_id, user_ids)

    async def set_role(self, actor_id: str, conversation_id: str, user_id: str, role: str) -> None:
        await self.delivery.groups.set_role(actor_id, conversation_id, user_id, role)

    async def group_info(self, user_id: str, conversation_id: str) -> GroupInfo:
        return await self.delivery.groups.info(user_id, conversation_id)
