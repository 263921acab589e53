"""Who is in a conversation: reads (cached) and writes, groups and c2c alike.

c2c members come from the id itself (`c2c:<a>:<b>`), and the MessageDB is told of them
when the conversation's first message is sequenced (so `conversations_of` lists it for
sync); group members live in the MessageDB and change through services.delivery.groups.
Reads are cached in-process for `ttl_s`; a write through this object invalidates its own
cache at once, other processes' caches (split deployment) age out within the TTL.
"""

from __future__ import annotations

import asyncio

from services.backends.messagedb import MessageDB
from services.common.errors import Forbidden, InvalidInput
from services.common.model import c2c_members, conversation_kind

__all__ = ["Membership"]


class Membership:
    def __init__(self, db: MessageDB, ttl_s: float = 5.0) -> None:
        self._db = db
        self._ttl = ttl_s
        self._cache: dict[str, tuple[float, list[str]]] = {}
        self._detail: dict[str, tuple[float, dict[str, tuple[int, int]]]] = {}

    # -- reads ---------------------------------------------------------------------------
    async def members(self, conversation_id: str) -> list[str]:
        if conversation_id.startswith("c2c:"):
            return list(c2c_members(conversation_id))
        loop = asyncio.get_running_loop()
        hit = self._cache.get(conversation_id)
        if hit is not None and hit[0] > loop.time():
            return hit[1]
        members = [str(m) for m in await self._db.members(conversation_id)]
        self._cache[conversation_id] = (loop.time() + self._ttl, members)
        return members

    async def require_member(self, user_id: str, conversation_id: str) -> list[str]:
        """The members; Forbidden if `user_id` is not one of them (read receipts)."""
        members = await self.members(conversation_id)
        if user_id not in members:
            raise Forbidden(f"{user_id} is not a member of {conversation_id}")
        return members

    async def require_sender(self, sender_id: str, conversation_id: str) -> None:
        """InvalidInput unless `sender_id` may send to the conversation (the send path)."""
        members = await self.members(conversation_id)
        if sender_id not in members:
            what = "one of the two users" if conversation_kind(conversation_id) == "c2c" else "a member of the group"
            raise InvalidInput(f"{sender_id} is not {what} of {conversation_id}")

    async def visibility(self, conversation_id: str, user_id: str) -> tuple[int, int]:
        """(seq, event_id) at and below which `user_id` sees nothing of the conversation:
        what happened before they joined a group whose history rule is "joined"."""
        if conversation_id.startswith("c2c:"):
            return 0, 0
        loop = asyncio.get_running_loop()
        hit = self._detail.get(conversation_id)
        if hit is None or hit[0] <= loop.time():
            hit = (loop.time() + self._ttl, {m.user_id: (m.visible_after_seq, m.visible_after_event)
                                             for m in await self._db.group_members(conversation_id)})
            self._detail[conversation_id] = hit
        return hit[1].get(user_id, (0, 0))

    def invalidate(self, conversation_id: str) -> None:
        self._cache.pop(conversation_id, None)
        self._detail.pop(conversation_id, None)

    # -- writes --------------------------------------------------------------------------
    async def record_c2c(self, conversation_id: str) -> None:
        """Record both users of a c2c conversation (the store, at its first message)."""
        await self._db.add_members(conversation_id, list(c2c_members(conversation_id)))
