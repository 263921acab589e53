"""Who is in a conversation: reads (cached) and writes, groups and c2c alike.

c2c members come from the id itself (`c2c:<a>:<b>`), and the MessageDB is told of them
when the conversation's first message is sequenced (so `conversations_of` lists it for
sync); group members live in the MessageDB and change through services.delivery.groups.
Reads are cached in-process for `ttl_s`; a write through this object invalidates its own
cache at once, other processes' caches (split deployment) age out within the TTL. The caches
hold at most `max_bytes` together (`flare_memory_bytes{structure="membership"}`), least
recently used first out: one 100k-member group is megabytes, and every group a process
ever saw used to stay.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Sequence

from services.backends.messagedb import MessageDB
from services.common.bounds import ENTRY_OVERHEAD, ByteBudget
from services.common.errors import Forbidden, InvalidInput
from services.common.model import c2c_members, conversation_kind

__all__ = ["Membership"]


class Membership:
    def __init__(self, db: MessageDB, ttl_s: float = 5.0, max_bytes: int = 64 * 1024 * 1024) -> None:
        self._db = db
        self._ttl = ttl_s
        self._cache: OrderedDict[str, tuple[float, list[str]]] = OrderedDict()
        self._detail: OrderedDict[str, tuple[float, dict[str, tuple[int, int]]]] = OrderedDict()
        self._costs: dict[tuple[str, str], int] = {}  # (which cache, conversation) -> bytes
        self.budget = ByteBudget("membership", max_bytes)

    def _keep(self, cache: OrderedDict, name: str, conversation_id: str, entry: tuple, members: int) -> None:
        self._forget(cache, name, conversation_id)
        cost = ENTRY_OVERHEAD + members * 80  # a str (or tuple) object per member
        cache[conversation_id] = entry
        self._costs[(name, conversation_id)] = cost
        self.budget.used += cost
        while self.budget.over() and len(self._costs) > 1:
            victim = self._cache if self._cache else self._detail
            victim_name = "members" if victim is self._cache else "detail"
            oldest = next(iter(victim))
            self._forget(victim, victim_name, oldest)
            self.budget.evictions += 1

    def _forget(self, cache: OrderedDict, name: str, conversation_id: str) -> None:
        if cache.pop(conversation_id, None) is not None:
            self.budget.used -= self._costs.pop((name, conversation_id), 0)

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
        self._keep(self._cache, "members", conversation_id, (loop.time() + self._ttl, members), len(members))
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
            self._keep(self._detail, "detail", conversation_id, hit, len(hit[1]))
        else:
            self._detail.move_to_end(conversation_id)
        return hit[1].get(user_id, (0, 0))

    def invalidate(self, conversation_id: str) -> None:
        self._forget(self._cache, "members", conversation_id)
        self._forget(self._detail, "detail", conversation_id)

    # -- writes --------------------------------------------------------------------------
    async def record_c2c_many(self, conversation_ids: Sequence[str]) -> None:
        """Record both users of each c2c conversation (the store, at a batch's first messages
        of them), in one MessageDB write."""
        await self._db.add_members_many([(c, list(c2c_members(c))) for c in conversation_ids])
