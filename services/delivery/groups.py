"""Groups: an owner, admins and members, a join policy, a history rule (docs/protocol.md §9).

Every change is checked here against the actor's role, written to the MessageDB, and told
to the members as a MEMBER event (stored, so offline members get it from sync; pushed to
the users who were removed or left too, who can no longer sync the group). The group's
row outlives its last member, so a group id can never be taken over with its history.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from services.backends.messagedb import GroupMember, GroupRecord, MessageDB
from services.common import codec
from services.common.errors import Conflict, Forbidden, InvalidInput, NotFound
from services.common.ids import ConversationId, UserId
from services.common.model import MAX_GROUP_MEMBERS, ConversationEvent, SyncType, now_ms, validate_name

from .fanout import Fanout
from .membership import Membership

__all__ = ["GroupInfo", "Groups", "JOIN_POLICIES", "HISTORY_RULES", "ROLES"]

JOIN_POLICIES = ("invite", "open")  # the first is the default
HISTORY_RULES = ("joined", "shared")  # the first is the default
ROLES = ("owner", "admin", "member")
_MANAGERS = ("owner", "admin")


@dataclass(frozen=True, slots=True)
class GroupInfo:
    conversation_id: str
    owner: str  # "" when nobody is left
    join_policy: str
    history: str
    members: list[tuple[str, str]]  # (user_id, role), longest-standing first

    def to_wire(self) -> dict[str, object]:
        return {"conversation_id": self.conversation_id, "group_id": self.conversation_id.removeprefix("group:"),
                "owner": self.owner, "join_policy": self.join_policy, "history": self.history,
                "members": [{"user_id": u, "role": r} for u, r in self.members]}


class Groups:
    def __init__(self, *, db: MessageDB, membership: Membership, fanout: Fanout) -> None:
        self._db = db
        self._membership = membership
        self._fanout = fanout

    # -- reads ---------------------------------------------------------------------------
    async def info(self, user_id: str, conversation_id: str) -> GroupInfo:
        group, members = await self._load(conversation_id)
        if _find(members, user_id) is None:
            raise Forbidden(f"{user_id} is not a member of {conversation_id}")
        return _info(group, members)

    # -- changes -------------------------------------------------------------------------
    async def create(self, creator_id: str, conversation_id: str, members: Sequence[str], *,
                     join_policy: str = JOIN_POLICIES[0], history: str = HISTORY_RULES[0]) -> GroupInfo:
        _check_choice("join_policy", join_policy, JOIN_POLICIES)
        _check_choice("history", history, HISTORY_RULES)
        others = sorted({_name(m) for m in members} - {creator_id})
        _check_size(len(others) + 1)
        now = now_ms()
        record = GroupRecord(ConversationId(conversation_id), join_policy, history, now)
        if not await self._db.create_group(record):
            raise Conflict(f"{conversation_id} exists or existed; a group id is never reused")
        await self._db.add_members(conversation_id, [creator_id], role="owner", joined_at=now)
        await self._db.add_members(conversation_id, others, joined_at=now)
        self._membership.invalidate(conversation_id)
        await self._publish(conversation_id, creator_id, "created", [creator_id, *others])
        return _info(record, await self._db.group_members(conversation_id))

    async def join(self, user_id: str, conversation_id: str) -> None:
        group, members = await self._load(conversation_id)
        if _find(members, user_id) is not None:
            return
        if group.join_policy != "open":
            raise Forbidden(f"{conversation_id} is invite-only: ask an admin to add you")
        if not members:
            raise Forbidden(f"{conversation_id} has no members left; it is closed")
        _check_size(len(members) + 1)
        await self._add(group, [user_id])
        await self._publish(conversation_id, user_id, "joined", [user_id])

    async def add(self, actor_id: str, conversation_id: str, user_ids: Sequence[str]) -> list[str]:
        group, members = await self._load(conversation_id)
        _require_role(members, actor_id, conversation_id, _MANAGERS, "add members")
        new = sorted({_name(u) for u in user_ids} - {m.user_id for m in members})
        if not new:
            return []
        _check_size(len(members) + len(new))
        await self._add(group, new)
        await self._publish(conversation_id, actor_id, "added", new)
        return new

    async def remove(self, actor_id: str, conversation_id: str, user_ids: Sequence[str]) -> list[str]:
        group, members = await self._load(conversation_id)
        actor = _require_role(members, actor_id, conversation_id, _MANAGERS, "remove members")
        gone: list[str] = []
        for user_id in sorted(set(user_ids)):
            member = _find(members, user_id)
            if member is None:
                continue
            if member.role == "owner":
                raise Forbidden("the owner cannot be removed")
            if member.role == "admin" and actor.role != "owner":
                raise Forbidden("only the owner can remove an admin")
            gone.append(user_id)
        if not gone:
            return []
        await self._db.remove_members(conversation_id, gone)
        self._membership.invalidate(conversation_id)
        await self._publish(conversation_id, actor_id, "removed", gone, also=gone)
        return gone

    async def leave(self, user_id: str, conversation_id: str) -> None:
        group, members = await self._load(conversation_id)
        member = _find(members, user_id)
        if member is None:
            return
        await self._db.remove_members(conversation_id, [user_id])
        self._membership.invalidate(conversation_id)
        await self._publish(conversation_id, user_id, "left", [user_id], also=[user_id])
        if member.role == "owner":  # the longest-standing admin, else member, takes over
            rest = [m for m in members if m.user_id != user_id]
            heir = next((m for m in rest if m.role == "admin"), rest[0] if rest else None)
            if heir is not None:
                await self._db.set_member_role(conversation_id, heir.user_id, "owner")
                await self._publish(conversation_id, user_id, "role", [heir.user_id], role="owner")

    async def set_role(self, actor_id: str, conversation_id: str, user_id: str, role: str) -> None:
        _check_choice("role", role, ("admin", "member"))
        _, members = await self._load(conversation_id)
        _require_role(members, actor_id, conversation_id, ("owner",), "change roles")
        member = _find(members, user_id)
        if member is None:
            raise NotFound(f"{user_id} is not a member of {conversation_id}")
        if member.role == "owner":
            raise Forbidden("the owner's role cannot be changed")
        if member.role == role:
            return
        await self._db.set_member_role(conversation_id, user_id, role)
        await self._publish(conversation_id, actor_id, "role", [user_id], role=role)

    # -- internals -----------------------------------------------------------------------
    async def _load(self, conversation_id: str) -> tuple[GroupRecord, list[GroupMember]]:
        group = await self._db.get_group(conversation_id)
        if group is None:
            raise NotFound(f"{conversation_id} does not exist")
        return group, await self._db.group_members(conversation_id)

    async def _add(self, group: GroupRecord, user_ids: list[str]) -> None:
        """New members see history from now on under "joined", all of it under "shared"."""
        after_seq = after_event = 0
        if group.history == "joined":
            after_seq = (await self._db.max_seqs([group.conversation_id])).get(group.conversation_id, 0)
            after_event = await self._db.last_event_id(group.conversation_id)
        await self._db.add_members(group.conversation_id, user_ids, visible_after_seq=after_seq,
                                   visible_after_event=after_event, joined_at=now_ms())
        self._membership.invalidate(group.conversation_id)

    async def _publish(self, conversation_id: str, actor_id: str, change: str, user_ids: list[str], *,
                       also: Sequence[str] = (), role: str | None = None) -> None:
        payload: dict[str, object] = {"change": change, "user_ids": user_ids}
        if role is not None:
            payload["role"] = role
        seq = (await self._db.max_seqs([conversation_id])).get(conversation_id, 0)
        event = await self._db.append_event(ConversationEvent(
            conversation_id=ConversationId(conversation_id), sync_type=SyncType.MEMBER, msg_id=0, seq=seq,
            actor_id=UserId(actor_id), timestamp=now_ms(), payload=payload))
        frame = codec.dumps({"type": "event", **event.to_wire()})
        members = await self._membership.members(conversation_id)
        await self._fanout.to_users({u: [frame] for u in {*members, *also}})


def _info(group: GroupRecord, members: list[GroupMember]) -> GroupInfo:
    owner = next((m.user_id for m in members if m.role == "owner"), "")
    return GroupInfo(group.conversation_id, owner, group.join_policy, group.history,
                     [(m.user_id, m.role) for m in members])


def _find(members: list[GroupMember], user_id: str) -> GroupMember | None:
    return next((m for m in members if m.user_id == user_id), None)


def _require_role(members: list[GroupMember], user_id: str, conversation_id: str, roles: Sequence[str],
                  what: str) -> GroupMember:
    member = _find(members, user_id)
    if member is None:
        raise Forbidden(f"{user_id} is not a member of {conversation_id}")
    if member.role not in roles:
        raise Forbidden(f"only the {' or '.join(roles)} may {what} in {conversation_id}")
    return member


def _check_choice(field: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise InvalidInput(f"field '{field}' must be one of {', '.join(choices)}")


def _check_size(count: int) -> None:
    if count > MAX_GROUP_MEMBERS:
        raise InvalidInput(f"a group has at most {MAX_GROUP_MEMBERS} members (the owner included); this would be {count}")


def _name(value: object) -> str:
    try:
        return validate_name(value, "member")
    except ValueError as exc:
        raise InvalidInput(f"field 'user_ids': {exc}") from exc
