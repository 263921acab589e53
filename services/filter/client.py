"""How other services reach the filter: one interface, in-process or (later) gRPC."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from services.common.model import Message

from .service import FilterService, FilterVerdict

__all__ = ["FilterClient", "InProcessFilterClient"]


@runtime_checkable
class FilterClient(Protocol):
    async def check(self, message: Message) -> FilterVerdict:
        """Decide what happens to `message` on the send path.

        The verdict's `action` is one of "allow", "mask" (deliver `verdict.body`, the
        masked copy, instead of the original), "block" (refuse; `rule` and `reason` say
        why, without echoing the matched word) or "rate_limited" (refuse; the sender may
        retry after `retry_after` seconds). Order: frequency limits first (a flood is
        refused before it costs a scan), then media rules, then sensitive words.
        """

    async def apply_config(self, kind: str, document: dict) -> int:
        """Validate and atomically apply a control-plane document of kind "filter-rules".

        Returns the instance's rules generation after the swap. Raises InvalidInput
        (details: `field`, `errors`) and keeps the current rules if the document is bad.
        """


class InProcessFilterClient:
    def __init__(self, service: FilterService) -> None:
        self._service = service

    async def check(self, message: Message) -> FilterVerdict:
        return await self._service.check(message)

    async def apply_config(self, kind: str, document: dict) -> int:
        return await self._service.apply_config(kind, document)
