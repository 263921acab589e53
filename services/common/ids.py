"""Identifiers: NewTypes for the domain ids and the MessageId snowflake.

A MessageId is 64 bits: 41 bits of milliseconds since FLARE_EPOCH_MS, 10 bits of node id
(0..1023) and 12 bits of per-millisecond sequence. Ids from one generator are strictly
increasing even when the wall clock steps back: the generator keeps its own notion of
"now" that never goes backwards, and borrows the next millisecond when a millisecond's
4096 ids are used up. Clients see ids as decimal strings (JavaScript loses precision
above 2**53).
"""

from __future__ import annotations

import time
from typing import NewType

__all__ = [
    "UserId",
    "DeviceId",
    "ConversationId",
    "Seq",
    "MessageIdGenerator",
    "FLARE_EPOCH_MS",
    "NODE_BITS",
    "SEQUENCE_BITS",
    "message_id_timestamp_ms",
    "message_id_node",
    "parse_message_id",
]

UserId = NewType("UserId", str)
DeviceId = NewType("DeviceId", str)
ConversationId = NewType("ConversationId", str)
Seq = NewType("Seq", int)

FLARE_EPOCH_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
NODE_BITS = 10
SEQUENCE_BITS = 12
_MAX_NODE = (1 << NODE_BITS) - 1
_MAX_SEQUENCE = (1 << SEQUENCE_BITS) - 1
_MAX_ID = (1 << 63) - 1


class MessageIdGenerator:
    def __init__(self, node_id: int, *, clock=time.time) -> None:
        if not 0 <= node_id <= _MAX_NODE:
            raise ValueError(f"node_id must be in 0..{_MAX_NODE}, got {node_id}")
        self.node_id = node_id
        self._clock = clock
        self._last_ms = -1
        self._sequence = 0

    def _now_ms(self) -> int:
        return int(self._clock() * 1000) - FLARE_EPOCH_MS

    def next_id(self) -> int:
        now = self._now_ms()
        if now > self._last_ms:
            self._last_ms = now
            self._sequence = 0
        else:
            # Same millisecond, or the clock stepped back: stay on our own timeline.
            self._sequence += 1
            if self._sequence > _MAX_SEQUENCE:
                self._last_ms += 1
                self._sequence = 0
        return (self._last_ms << (NODE_BITS + SEQUENCE_BITS)) | (self.node_id << SEQUENCE_BITS) | self._sequence


def message_id_timestamp_ms(message_id: int) -> int:
    return (message_id >> (NODE_BITS + SEQUENCE_BITS)) + FLARE_EPOCH_MS


def message_id_node(message_id: int) -> int:
    return (message_id >> SEQUENCE_BITS) & _MAX_NODE


def parse_message_id(text: object) -> int:
    """Parse a client-supplied message id (string or int); raise ValueError if absurd."""
    if isinstance(text, bool):
        raise ValueError("message id must be a decimal string")
    if isinstance(text, int):
        value = text
    elif isinstance(text, str) and text.isdigit() and len(text) <= 19:
        value = int(text)
    else:
        raise ValueError("message id must be a decimal string of at most 19 digits")
    if not 0 < value <= _MAX_ID:
        raise ValueError("message id out of range")
    return value
