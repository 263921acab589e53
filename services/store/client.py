"""How other services reach message-store: one interface, in-process or gRPC."""

from __future__ import annotations

from typing import Protocol

from services.common.model import Message

from .service import AcceptResult, StoreService

__all__ = ["StoreClient", "InProcessStoreClient"]


class StoreClient(Protocol):
    async def accept(self, message: Message) -> AcceptResult:
        """Log the message durably (once per sender + client_msg_id) and return its msg_id.
        Raises BackendUnavailable if the log cannot take it; the caller must not report STORED."""


class InProcessStoreClient:
    def __init__(self, service: StoreService) -> None:
        self._service = service

    async def accept(self, message: Message) -> AcceptResult:
        return await self._service.accept(message)
