"""What the router answers: the values its clients see, in-process or over gRPC."""

from __future__ import annotations

from dataclasses import dataclass

from services.common.pickling import pickled_by_fields
from services.delivery.groups import GroupInfo  # what group_create and group_info answer

__all__ = ["GroupInfo", "SendResult"]


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class SendResult:
    msg_id: int
    duplicate: bool
    body: object  # as stored (masked if a rule masked it)
