"""How other services reach the filter: one interface, in-process or gRPC.

In-process the FilterService itself is the client; GrpcFilterClient is the same over filter.proto.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import grpc.aio

from services.common.grpcio import GrpcClientBase
from services.common.model import Message
from services.common.proto import filter_pb2 as pb
from services.common.proto import filter_pb2_grpc as pb_grpc
from services.common.proto_model import json_bytes, json_value, message_to_pb

from .types import FilterVerdict

__all__ = ["FilterClient", "GrpcFilterClient"]


@runtime_checkable
class FilterClient(Protocol):
    async def check(self, message: Message) -> FilterVerdict:
        """Decide what happens to `message` on the send path.

        The verdict's `action` is one of "allow", "mask" (deliver `verdict.body`, the
        masked copy, instead of the original), "block" (refuse; `rule` and `reason` say
        why, without echoing the matched word) or "rate_limited" (refuse; the sender may
        retry after `retry_after` seconds). Order: frequency limits first (a flood is
        refused before it costs a scan), then media rules, then sensitive words.
        """

    async def apply_config(self, kind: str, document: dict) -> int:
        """Validate and atomically apply a control-plane document of kind "filter-rules".

        Returns the instance's rules generation after the swap. Raises InvalidInput
        (details: `field`, `errors`) and keeps the current rules if the document is bad.
        """


class GrpcFilterClient(GrpcClientBase):
    """FilterClient over gRPC (filter.proto); `channel` is a grpc.aio.Channel or a target."""

    service_name = "filter"
    stub_class = pb_grpc.FilterStub

    def __init__(self, channel: grpc.aio.Channel | str, *, timeout_s: float = 2.0) -> None:
        # A short deadline: check is on every send, and a slow filter should fail the send
        # (the client resends) rather than pile up requests behind it.
        super().__init__(channel, timeout_s=timeout_s)
        self._check = self._batched("CheckBatch")  # concurrent checks share a call

    async def check(self, message: Message) -> FilterVerdict:
        reply: pb.Verdict = await self._check(message_to_pb(message))
        body = json_value(reply.body_json) if reply.HasField("body_json") else message.body
        retry_after = reply.retry_after if reply.HasField("retry_after") else None
        return FilterVerdict(reply.action, body, reply.reason, reply.rule, retry_after)

    async def apply_config(self, kind: str, document: dict) -> int:
        request = pb.ApplyConfigRequest(kind=kind, document_json=json_bytes(document, "document"))
        # Compiling a large word list takes a while (off the loop on the server); allow it.
        reply = await self._call(self._stub.ApplyConfig, request, timeout_s=max(self.timeout_s, 60.0))
        return reply.generation
