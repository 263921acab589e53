"""What message-sync answers: the values its clients see, in-process or over gRPC.

`sync` answers wire-shaped dicts (docs/protocol.md, `sync_result`) rather than model
objects: the gateway forwards them to the device as they are, and over gRPC the client
builds them straight from the protobuf without a model object in between.
"""

from __future__ import annotations

from typing import TypedDict

__all__ = ["ConversationNews", "CursorRange", "SyncResult"]


class CursorRange(TypedDict):
    seq: int
    event_id: int


class ConversationNews(TypedDict):
    messages: list[dict]  # Message.to_wire(), after the device's seq cursor, in seq order
    events: list[dict]  # ConversationEvent.to_wire(), after its event cursor
    has_more: bool  # the page limit cut either list: sync again with the new cursors
    max_seq: int  # the conversation's latest seq
    after: CursorRange  # the page covers (after, next] for seq and for event_id
    next: CursorRange  # what the device acks once it holds the page


SyncResult = dict[str, ConversationNews]  # conversation id -> news (only conversations with any)
