"""What the store answers: the values its clients see, in-process or over gRPC."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AcceptResult"]


@dataclass(frozen=True, slots=True)
class AcceptResult:
    msg_id: int
    duplicate: bool
