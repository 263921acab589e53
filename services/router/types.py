"""What the router answers: the values its clients see, in-process or over gRPC."""

from __future__ import annotations

from dataclasses import dataclass

from services.delivery.groups import GroupInfo  # what group_create and group_info answer

__all__ = ["GroupInfo", "SendResult"]


@dataclass(frozen=True, slots=True)
class SendResult:
    msg_id: int
    duplicate: bool
    body: object  # as stored (masked if a rule masked it)
