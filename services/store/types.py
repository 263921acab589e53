"""What the store answers: the values its clients see, in-process or over gRPC."""

from __future__ import annotations

from dataclasses import dataclass

from services.common.pickling import pickled_by_fields

__all__ = ["AcceptResult", "Reservation"]


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class AcceptResult:
    msg_id: int
    duplicate: bool


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Reservation:
    """The msg_id a (sender, client_msg_id) has: new (ours), or an earlier one's; `stored`
    when that earlier one is known to be in the log."""

    msg_id: int
    duplicate: bool
    stored: bool
