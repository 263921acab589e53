"""How the gateway reaches message-sync: one interface, in-process or gRPC."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from services.common.model import ConversationEvent, Cursor

from .service import SyncService

__all__ = ["SyncClient", "InProcessSyncClient"]


class SyncClient(Protocol):
    async def sync(self, user_id: str, device_id: str, *, cursors: Mapping[str, Cursor] | None = None,
                   limit: int | None = None) -> dict[str, dict]:
        """Per conversation with news: {"messages", "events", "has_more", "max_seq"}."""

    def note_ack(self, user_id: str, device_id: str, conversation_id: str, *, seq: int = 0, event_id: int = 0) -> None: ...

    async def recall(self, user_id: str, msg_id: int) -> ConversationEvent: ...

    async def delete(self, user_id: str, msg_id: int) -> ConversationEvent: ...

    async def read(self, user_id: str, conversation_id: str, seq: int) -> ConversationEvent: ...


class InProcessSyncClient:
    def __init__(self, service: SyncService) -> None:
        self._service = service

    async def sync(self, user_id, device_id, *, cursors=None, limit=None):
        return await self._service.sync(user_id, device_id, cursors=cursors, limit=limit)

    def note_ack(self, user_id, device_id, conversation_id, *, seq=0, event_id=0):
        self._service.note_ack(user_id, device_id, conversation_id, seq=seq, event_id=event_id)

    async def recall(self, user_id, msg_id):
        return await self._service.recall(user_id, msg_id)

    async def delete(self, user_id, msg_id):
        return await self._service.delete(user_id, msg_id)

    async def read(self, user_id, conversation_id, seq):
        return await self._service.read(user_id, conversation_id, seq)
