"""How the gateway reaches message-router: one interface, in-process or gRPC.

In-process the RouterService itself is the client; GrpcRouterClient is the same over router.proto.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import grpc.aio

from services.common.grpcio import DEFAULT_TIMEOUT_S, GrpcClientBase
from services.common.model import Message
from services.common.proto import router_pb2 as pb
from services.common.proto import router_pb2_grpc as pb_grpc
from services.common.proto_model import json_value, message_to_pb

from services.store.types import Reservation

from .types import GroupInfo, SendResult

__all__ = ["RouterClient", "GrpcRouterClient", "admit_then_send"]


@runtime_checkable
class RouterClient(Protocol):
    async def admit(self, message: Message) -> Reservation:
        """Refuse a non-member (InvalidInput) and give (sender, client_msg_id) its msg_id:
        message.msg_id if new, the original one for a resend. Called before `received`."""

    async def send(self, message: Message) -> SendResult:
        """Filter and durably log a message. Raises Rejected, RateLimited, InvalidInput,
        BackendUnavailable; returns once the log has it (STORED)."""

    async def submit(self, message: Message, admitted: Callable[[Reservation], None]) -> SendResult:
        """admit, then (unless the reservation says it is stored already) send: one call
        where the gateway would make two. `admitted` is called with the reservation before
        the send (the gateway pushes `received` from it) and may be called again if a
        failover repeats the call; a stored resend returns without a send."""

    async def on_delivered(self, user_id: str, conversation_id: str, seqs: Sequence[int]) -> None:
        """A device of `user_id` has these seqs of the conversation (its acks, batched per
        tick by the gateway): each sender is told DELIVERED once per recipient user."""

    async def deliver(self, messages: Sequence[Message]) -> None:
        """Push a persisted batch (seq order per conversation) to every member device; the
        store consumer's hand-off, awaited batch after batch so per-conversation order holds."""

    async def create_group(self, creator_id: str, conversation_id: str, members: Sequence[str], *,
                           join_policy: str = "invite", history: str = "joined") -> GroupInfo:
        """Create the group with the creator as owner and `members` as members. Conflict if
        the id exists or ever existed; InvalidInput beyond the member cap or for a bad setting."""

    async def join_group(self, user_id: str, conversation_id: str) -> None:
        """Join an open group; Forbidden if it is invite-only or empty, NotFound if unknown."""

    async def leave_group(self, user_id: str, conversation_id: str) -> None:
        """Leave (not an error if not a member); an owner who leaves hands over to the
        longest-standing admin, else member."""

    async def add_members(self, actor_id: str, conversation_id: str, user_ids: Sequence[str]) -> list[str]:
        """An owner or admin adds members; returns those who were not members yet."""

    async def remove_members(self, actor_id: str, conversation_id: str, user_ids: Sequence[str]) -> list[str]:
        """An owner or admin removes members (only the owner removes admins; nobody the
        owner); returns those who were members."""

    async def set_role(self, actor_id: str, conversation_id: str, user_id: str, role: str) -> None:
        """The owner makes a member an admin or an admin a member."""

    async def group_info(self, user_id: str, conversation_id: str) -> GroupInfo:
        """Settings and members with roles; Forbidden for a non-member."""


async def admit_then_send(router: RouterClient, message: Message,
                          admitted: Callable[[Reservation], None]) -> SendResult:
    """RouterClient.submit from its admit and send: every implementation's, so they agree."""
    reservation = await router.admit(message)
    message.msg_id = reservation.msg_id  # a resend goes on with its original msg_id
    admitted(reservation)
    if reservation.stored:  # the original is in the log: nothing to filter or produce again
        return SendResult(reservation.msg_id, True, message.body)
    result = await router.send(message)
    return SendResult(result.msg_id, reservation.duplicate or result.duplicate, result.body)


class GrpcRouterClient(GrpcClientBase):
    """RouterClient over gRPC (router.proto); `channel` is a grpc.aio.Channel or a target."""

    service_name = "router"
    stub_class = pb_grpc.RouterStub

    def __init__(self, channel: grpc.aio.Channel | str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        super().__init__(channel, timeout_s=timeout_s)
        # Every send crosses twice: concurrent sends share AdmitBatch / SendBatch calls.
        self._admit = self._batched("AdmitBatch")
        self._send = self._batched("SendBatch")
        self._delivered = self._batched("OnDeliveredBatch", batch_type=pb.DeliveredBatch)

    async def admit(self, message: Message) -> Reservation:
        reply: pb.AdmitResponse = await self._admit(message_to_pb(message))
        return Reservation(reply.msg_id, reply.duplicate, reply.stored)

    async def send(self, message: Message) -> SendResult:
        reply: pb.SendResponse = await self._send(message_to_pb(message))
        if reply.HasField("body_json"):
            # In-process the router masks the caller's Message itself; keep that behaviour.
            message.body = json_value(reply.body_json)
        return SendResult(reply.msg_id, reply.duplicate, message.body)

    async def submit(self, message: Message, admitted: Callable[[Reservation], None]) -> SendResult:
        # Two RPCs (each batched with other sends): gRPC has no early answer in a unary call.
        return await admit_then_send(self, message, admitted)

    async def on_delivered(self, user_id: str, conversation_id: str, seqs: Sequence[int]) -> None:
        await self._delivered(pb.DeliveredRequest(user_id=user_id, conversation_id=conversation_id, seqs=seqs))

    async def deliver(self, messages: Sequence[Message]) -> None:
        if messages:
            # A long deadline: the router retries unreachable gateways with backoff inside it.
            request = pb.DeliverRequest(messages=[message_to_pb(m) for m in messages])
            await self._call(self._stub.Deliver, request, timeout_s=max(self.timeout_s, 30.0))

    async def create_group(self, creator_id: str, conversation_id: str, members: Sequence[str], *,
                           join_policy: str = "invite", history: str = "joined") -> GroupInfo:
        request = pb.CreateGroupRequest(creator_id=creator_id, conversation_id=conversation_id, members=members,
                                        join_policy=join_policy, history=history)
        return _group_info(await self._call(self._stub.CreateGroup, request))

    async def join_group(self, user_id: str, conversation_id: str) -> None:
        await self._call(self._stub.JoinGroup, pb.MembershipRequest(user_id=user_id, conversation_id=conversation_id))

    async def leave_group(self, user_id: str, conversation_id: str) -> None:
        await self._call(self._stub.LeaveGroup, pb.MembershipRequest(user_id=user_id, conversation_id=conversation_id))

    async def add_members(self, actor_id: str, conversation_id: str, user_ids: Sequence[str]) -> list[str]:
        request = pb.MembersChange(actor_id=actor_id, conversation_id=conversation_id, user_ids=user_ids)
        return list((await self._call(self._stub.AddMembers, request)).members)

    async def remove_members(self, actor_id: str, conversation_id: str, user_ids: Sequence[str]) -> list[str]:
        request = pb.MembersChange(actor_id=actor_id, conversation_id=conversation_id, user_ids=user_ids)
        return list((await self._call(self._stub.RemoveMembers, request)).members)

    async def set_role(self, actor_id: str, conversation_id: str, user_id: str, role: str) -> None:
        await self._call(self._stub.SetRole, pb.SetRoleRequest(actor_id=actor_id, conversation_id=conversation_id,
                                                               user_id=user_id, role=role))

    async def group_info(self, user_id: str, conversation_id: str) -> GroupInfo:
        request = pb.MembershipRequest(user_id=user_id, conversation_id=conversation_id)
        return _group_info(await self._call(self._stub.GetGroupInfo, request))


def _group_info(reply: pb.GroupInfoResponse) -> GroupInfo:
    return GroupInfo(reply.conversation_id, reply.owner, reply.join_policy, reply.history,
                     [(m.user_id, m.role) for m in reply.members])
