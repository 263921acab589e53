"""How the gateway reaches message-router: one interface, in-process or gRPC.

In-process the RouterService itself is the client; GrpcRouterClient is the same over router.proto.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from services.common.grpcio import GrpcClientBase
from services.common.model import Message
from services.common.proto import router_pb2 as pb
from services.common.proto import router_pb2_grpc as pb_grpc
from services.common.proto_model import json_value, message_to_pb

from .types import SendResult

__all__ = ["RouterClient", "GrpcRouterClient"]


@runtime_checkable
class RouterClient(Protocol):
    async def send(self, message: Message) -> SendResult:
        """Filter and durably log a message. Raises Rejected, RateLimited, InvalidInput,
        BackendUnavailable; returns once the log has it (STORED)."""

    async def on_delivered(self, user_id: str, conversation_id: str, seqs: Sequence[int]) -> None:
        """A device of `user_id` has these seqs of the conversation (its acks, batched per
        tick by the gateway): each sender is told DELIVERED once per recipient user."""

    async def deliver(self, messages: Sequence[Message]) -> None:
        """Push a persisted batch (seq order per conversation) to every member device; the
        store consumer's hand-off, awaited batch after batch so per-conversation order holds."""

    async def create_group(self, creator_id: str, conversation_id: str, members: Sequence[str]) -> list[str]:
        """Create the group with `members` (or add them, if the creator already belongs to
        it) and return every member. Forbidden if it exists without the creator."""

    async def join_group(self, user_id: str, conversation_id: str) -> None:
        """Add `user_id` to an existing group; NotFound if there is no such group."""

    async def leave_group(self, user_id: str, conversation_id: str) -> None:
        """Remove `user_id` from the group (not an error if it was not a member)."""


class GrpcRouterClient(GrpcClientBase):
    """RouterClient over gRPC (router.proto); `channel` is a grpc.aio.Channel or a target."""

    service_name = "router"
    stub_class = pb_grpc.RouterStub

    async def send(self, message: Message) -> SendResult:
        reply: pb.SendResponse = await self._call(self._stub.Send, message_to_pb(message))
        if reply.HasField("body_json"):
            # In-process the router masks the caller's Message itself; keep that behaviour.
            message.body = json_value(reply.body_json)
        return SendResult(reply.msg_id, reply.duplicate, message.body)

    async def on_delivered(self, user_id: str, conversation_id: str, seqs: Sequence[int]) -> None:
        request = pb.DeliveredRequest(user_id=user_id, conversation_id=conversation_id, seqs=seqs)
        await self._call(self._stub.OnDelivered, request)

    async def deliver(self, messages: Sequence[Message]) -> None:
        if messages:
            # A long deadline: the router retries unreachable gateways with backoff inside it.
            request = pb.DeliverRequest(messages=[message_to_pb(m) for m in messages])
            await self._call(self._stub.Deliver, request, timeout_s=max(self.timeout_s, 30.0))

    async def create_group(self, creator_id: str, conversation_id: str, members: Sequence[str]) -> list[str]:
        request = pb.CreateGroupRequest(creator_id=creator_id, conversation_id=conversation_id, members=members)
        reply: pb.MembersResponse = await self._call(self._stub.CreateGroup, request)
        return list(reply.members)

    async def join_group(self, user_id: str, conversation_id: str) -> None:
        await self._call(self._stub.JoinGroup, pb.MembershipRequest(user_id=user_id, conversation_id=conversation_id))

    async def leave_group(self, user_id: str, conversation_id: str) -> None:
        await self._call(self._stub.LeaveGroup, pb.MembershipRequest(user_id=user_id, conversation_id=conversation_id))
