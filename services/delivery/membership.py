"""Who is in a conversation: reads (cached) and writes, groups and c2c alike.

c2c members come from the id itself (`c2c:<a>:<b>`), and the MessageDB is told of them
when the conversation's first message is sequenced (so `conversations_of` lists it for
sync); group members live in the MessageDB and change through create/join/leave.
Reads are cached in-process for `ttl_s`; a write through this object invalidates its own
cache at once, other processes' caches (split deployment) age out within the TTL. The cache
holds at most `max_bytes` of member lists (`flare_memory_bytes{structure="membership"}`),
least recently used first out: one 100k-member group is megabytes, and every group a
process ever saw used to stay.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Sequence

from services.backends.messagedb import MessageDB
from services.common.bounds import ENTRY_OVERHEAD, ByteBudget
from services.common.errors import Forbidden, InvalidInput, NotFound
from services.common.model import c2c_members, conversation_kind

__all__ = ["Membership"]


class Membership:
    def __init__(self, db: MessageDB, ttl_s: float = 5.0, max_bytes: int = 64 * 1024 * 1024) -> None:
        self._db = db
        self._ttl = ttl_s
        self._cache: OrderedDict[str, tuple[float, list[str], int]] = OrderedDict()  # deadline, members, cost
        self.budget = ByteBudget("membership", max_bytes)

    # -- reads ---------------------------------------------------------------------------
    async def members(self, conversation_id: str) -> list[str]:
        if conversation_id.startswith("c2c:"):
            return list(c2c_members(conversation_id))
        loop = asyncio.get_running_loop()
        hit = self._cache.get(conversation_id)
        if hit is not None and hit[0] > loop.time():
            self._cache.move_to_end(conversation_id)
            return hit[1]
        members = [str(m) for m in await self._db.members(conversation_id)]
        self.invalidate(conversation_id)
        cost = ENTRY_OVERHEAD + sum(len(m) + 60 for m in members)  # a str object per member id
        self._cache[conversation_id] = (loop.time() + self._ttl, members, cost)
        self.budget.used += cost
        while self.budget.over() and len(self._cache) > 1:
            _, (_, _, dropped) = self._cache.popitem(last=False)
            self.budget.used -= dropped
            self.budget.evictions += 1
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

    def invalidate(self, conversation_id: str) -> None:
        entry = self._cache.pop(conversation_id, None)
        if entry is not None:
            self.budget.used -= entry[2]

    # -- writes --------------------------------------------------------------------------
    async def record_c2c(self, conversation_id: str) -> None:
        """Record both users of a c2c conversation (the store, at its first message)."""
        await self._db.add_members(conversation_id, list(c2c_members(conversation_id)))

    async def create_group(self, creator_id: str, conversation_id: str, members: Sequence[str]) -> list[str]:
        """Create the group, or add members to it if the creator already belongs to it."""
        existing = [str(m) for m in await self._db.members(conversation_id)]
        if existing and creator_id not in existing:
            raise Forbidden(f"{conversation_id} exists and {creator_id} is not a member")
        await self._db.add_members(conversation_id, list(members))
        self.invalidate(conversation_id)
        return [str(m) for m in await self._db.members(conversation_id)]

    async def join_group(self, user_id: str, conversation_id: str) -> None:
        if not await self._db.members(conversation_id):
            raise NotFound(f"{conversation_id} does not exist")
        await self._db.add_members(conversation_id, [user_id])
        self.invalidate(conversation_id)

    async def leave_group(self, user_id: str, conversation_id: str) -> None:
        await self._db.remove_members(conversation_id, [user_id])
        self.invalidate(conversation_id)

