"""Row <-> model conversions shared by the PostgreSQL table modules."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta

import asyncpg

from services.common import codec
from services.common.ids import ConversationId, DeviceId, UserId
from services.common.model import Message

__all__ = ["COLUMNS", "M_COLUMNS", "Connect", "to_time", "to_ms", "row_to_message"]

# How a table module borrows a pooled connection: `async with self._conn("what") as conn`.
Connect = Callable[[str], AbstractAsyncContextManager[asyncpg.Connection]]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
COLUMNS = ("msg_id, conversation_id, seq, sender_id, sender_device, client_msg_id, content_type, "
           "body::text, created_at, flags")
M_COLUMNS = ", ".join(f"m.{c}" for c in COLUMNS.split(", "))


def to_time(ms: int) -> datetime:
    return _EPOCH + ms * _MS


def to_ms(moment: datetime) -> int:
    return (moment - _EPOCH) // _MS


def row_to_message(row) -> Message:
    return Message(
        msg_id=row["msg_id"], client_msg_id=row["client_msg_id"],
        conversation_id=ConversationId(row["conversation_id"]), sender_id=UserId(row["sender_id"]),
        sender_device=DeviceId(row["sender_device"]), content_type=row["content_type"],
        body=codec.loads(row["body"]), created_at=to_ms(row["created_at"]), seq=row["seq"], flags=row["flags"],
    )


