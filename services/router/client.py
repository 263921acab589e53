"""How the gateway reaches message-router: one interface, in-process or gRPC."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from services.common.model import Message

from .service import RouterService, SendResult

__all__ = ["RouterClient", "InProcessRouterClient"]


class RouterClient(Protocol):
    async def send(self, message: Message) -> SendResult:
        """Filter and durably log a message. Raises Rejected, RateLimited, InvalidInput,
        BackendUnavailable; returns once the log has it (STORED)."""

    async def on_delivered(self, user_id: str, conversation_id: str, seqs: Sequence[int]) -> None: ...

    async def create_group(self, creator_id: str, conversation_id: str, members: Sequence[str]) -> list[str]: ...

    async def join_group(self, user_id: str, conversation_id: str) -> None: ...

    async def leave_group(self, user_id: str, conversation_id: str) -> None: ...


class InProcessRouterClient:
    def __init__(self, service: RouterService) -> None:
        self._service = service

    async def send(self, message: Message) -> SendResult:
        return await self._service.send(message)

    async def on_delivered(self, user_id: str, conversation_id: str, seqs: Sequence[int]) -> None:
        await self._service.on_delivered(user_id, conversation_id, seqs)

    async def create_group(self, creator_id: str, conversation_id: str, members: Sequence[str]) -> list[str]:
        return await self._service.create_group(creator_id, conversation_id, members)

    async def join_group(self, user_id: str, conversation_id: str) -> None:
        await self._service.join_group(user_id, conversation_id)

    async def leave_group(self, user_id: str, conversation_id: str) -> None:
        await self._service.leave_group(user_id, conversation_id)
