"""Contract for the MessageDB port (services/backends/messagedb/ports.py), run against every adapter.

Conversation and user ids carry a random suffix so the suite can share one real database.
"""

from __future__ import annotations

import itertools

import pytest

from services.backends.messagedb import CursorUpdate, MessageDB
from services.common.errors import Conflict
from services.common.model import ConversationEvent, Cursor, Message, MessageFlags, SyncType

_ids = itertools.count(1)


def _msg(conv: str, seq: int, *, sender: str = "alice", client: str | None = None, body: object = None,
         msg_id: int | None = None, created_at: int = 1_700_000_000_000) -> Message:
    n = next(_ids)
    return Message(
        msg_id=msg_id if msg_id is not None else (hash(conv) & 0xFFFF_FFFF) * 1_000_000 + n,
        client_msg_id=client or f"cm-{conv}-{n}",
        conversation_id=conv,  # type: ignore[arg-type]
        sender_id=sender,  # type: ignore[arg-type]
        sender_device="phone",  # type: ignore[arg-type]
        content_type="text",
        body=body if body is not None else {"text": f"hello {seq}"},
        created_at=created_at + seq,
        seq=seq,
    )


@pytest.fixture
def conv(unique) -> str:
    return f"group:{unique}"


async def test_is_a_messagedb(messagedb):
    assert isinstance(messagedb, MessageDB)


async def test_migrations_idempotent(messagedb):
    applied = await messagedb.applied_migrations()
    assert applied  # the fixture migrated
    assert await messagedb.migrate() == []
    assert await messagedb.applied_migrations() == applied


async def test_insert_and_read_back(messagedb, conv, unique):
    body = {"text": "héllo", "nested": [1, 2.5, None, True, {"k": "v"}]}
    first = _msg(conv, 1, body=body, sender=f"alice-{unique}")
    others = [_msg(conv, s, sender=f"alice-{unique}") for s in (2, 3)]
    await messagedb.insert_messages([first, *others])
    stored = await messagedb.get_message(first.msg_id)
    assert stored == first
    assert await messagedb.get_message(first.msg_id + 999_999_999) is None
    after = await messagedb.messages_after(conv, 0)
    assert [m.seq for m in after] == [1, 2, 3]
    assert after[0].body == body
    assert [m.seq for m in await messagedb.messages_after(conv, 1, limit=1)] == [2]
    assert await messagedb.count_messages(conv) == 3
    assert await messagedb.count_messages() >= 3


@pytest.mark.parametrize("body", ["plain string", 42, [1, "two"], None, {"a": {"b": []}}])
async def test_body_is_any_json(messagedb, conv, body):
    message = _msg(conv, 1)
    message.body = body
    await messagedb.insert_messages([message])
    assert (await messagedb.get_message(message.msg_id)).body == body


async def test_insert_is_idempotent_on_msg_id(messagedb, conv):
    original = _msg(conv, 1)
    await messagedb.insert_messages([original])
    # A re-consumed record may arrive with a different seq: the stored row keeps its own.
    retry = _msg(conv, 7, msg_id=original.msg_id, client=original.client_msg_id)
    await messagedb.insert_messages([retry, _msg(conv, 2)])
    assert (await messagedb.get_message(original.msg_id)).seq == 1
    assert [m.seq for m in await messagedb.messages_after(conv, 0)] == [1, 2]


async def test_conflicting_seq_raises_and_rolls_back(messagedb, conv):
    await messagedb.insert_messages([_msg(conv, 1)])
    fresh = _msg(conv, 2)
    with pytest.raises(Conflict):
        await messagedb.insert_messages([fresh, _msg(conv, 1)])  # seq 1 belongs to another msg_id
    # One transaction: the good message of the failed batch was not stored either.
    assert await messagedb.get_message(fresh.msg_id) is None
    assert await messagedb.count_messages(conv) == 1


async def test_conflicting_client_msg_id_raises(messagedb, conv, unique):
    sender = f"bob-{unique}"
    await messagedb.insert_messages([_msg(conv, 1, sender=sender, client="dup")])
    with pytest.raises(Conflict):
        await messagedb.insert_messages([_msg(conv, 2, sender=sender, client="dup")])
    # The same client_msg_id from another sender is fine.
    await messagedb.insert_messages([_msg(conv, 2, sender=f"carol-{unique}", client="dup")])


async def test_find_existing(messagedb, conv, unique):
    sender = f"dan-{unique}"
    stored = _msg(conv, 1, sender=sender, client="c-1")
    await messagedb.insert_messages([stored])
    same_id = _msg(conv, 0, msg_id=stored.msg_id, sender=sender, client="c-1")
    same_client = _msg(conv, 0, sender=sender, client="c-1")  # a resend with a new msg_id
    new = _msg(conv, 0, sender=sender, client="c-2")
    found = await messagedb.find_existing([same_id, same_client, new])
    assert set(found) == {same_id.msg_id, same_client.msg_id}
    assert found[same_client.msg_id].msg_id == stored.msg_id
    assert found[same_client.msg_id].seq == 1
    assert await messagedb.find_existing([]) == {}


async def test_find_existing_answers_a_batch_bigger_than_one_statement(messagedb, conv, unique):
    sender = f"erin-{unique}"
    stored = [_msg(conv, seq, sender=sender, client=f"c-{seq}") for seq in range(1, 601)]
    await messagedb.insert_messages(stored)
    # Every other one a resend under a new msg_id, the rest new: 1,200 lookups in one call.
    asked = [_msg(conv, 0, sender=sender, client=f"c-{seq}") for seq in range(1, 601, 2)]
    asked += [_msg(conv, 0, sender=sender, client=f"new-{n}") for n in range(900)]
    found = await messagedb.find_existing(asked)
    assert {m.client_msg_id for m in found.values()} == {f"c-{seq}" for seq in range(1, 601, 2)}
    assert all(found[m.msg_id].client_msg_id == m.client_msg_id for m in asked if m.msg_id in found)
    assert {found[m.msg_id].seq for m in asked if m.msg_id in found} == set(range(1, 601, 2))


async def test_find_msg_ids(messagedb, conv, unique):
    # (archived messages: tests/integration/test_archive.py, which archives some first)
    sender = f"fay-{unique}"
    stored = [_msg(conv, seq, sender=sender, client=f"c-{seq}") for seq in range(1, 401)]
    await messagedb.insert_messages(stored)
    same_id = _msg(conv, 0, msg_id=stored[0].msg_id, sender=sender, client="other")  # the msg_id wins
    resends = [_msg(conv, 0, sender=sender, client=f"c-{seq}") for seq in range(2, 401)]
    new = [_msg(conv, 0, sender=sender, client=f"new-{n}") for n in range(300)]
    found = await messagedb.find_msg_ids([same_id, *resends, *new])  # more than one statement's worth
    assert found == {same_id.msg_id: stored[0].msg_id,
                     **{r.msg_id: s.msg_id for r, s in zip(resends, stored[1:])}}
    assert await messagedb.find_msg_ids([]) == {}


async def test_max_seqs(messagedb, conv, unique):
    other = f"group:{unique}-other"
    await messagedb.insert_messages([_msg(conv, s) for s in (1, 2, 3)] + [_msg(other, 1)])
    assert await messagedb.max_seqs([conv, other, f"group:{unique}-empty"]) == {
        conv: 3, other: 1, f"group:{unique}-empty": 0,
    }
    assert await messagedb.max_seqs([]) == {}


async def test_set_flags(messagedb, conv):
    message = _msg(conv, 1)
    await messagedb.insert_messages([message])
    await messagedb.set_flags(message.msg_id, int(MessageFlags.RECALLED))
    stored = await messagedb.get_message(message.msg_id)
    assert stored.recalled and stored.seq == 1


def _event(conv: str, sync_type: SyncType, *, actor: str, for_user: str | None = None, seq: int = 1) -> ConversationEvent:
    return ConversationEvent(
        conversation_id=conv, sync_type=sync_type, msg_id=123, seq=seq,  # type: ignore[arg-type]
        actor_id=actor, timestamp=1_700_000_000_000, for_user=for_user, payload={"why": "test"},  # type: ignore[arg-type]
    )


async def test_events_numbered_per_conversation_and_visibility(messagedb, conv, unique):
    alice, bob = f"alice-{unique}", f"bob-{unique}"
    other = f"group:{unique}-2"
    e1 = await messagedb.append_event(_event(conv, SyncType.RECALL, actor=alice))
    e2 = await messagedb.append_event(_event(conv, SyncType.DELETE, actor=bob, for_user=bob))
    e3 = await messagedb.append_event(_event(conv, SyncType.READ, actor=alice, for_user=alice))
    o1 = await messagedb.append_event(_event(other, SyncType.UPDATE, actor=alice))
    assert [e1.event_id, e2.event_id, e3.event_id, o1.event_id] == [1, 2, 3, 1]

    for_alice = await messagedb.events_after(conv, 0, user_id=alice)
    assert [e.event_id for e in for_alice] == [1, 3]
    assert for_alice[0] == e1 and for_alice[0].payload == {"why": "test"}
    for_bob = await messagedb.events_after(conv, 0, user_id=bob)
    assert [(e.event_id, e.sync_type, e.for_user) for e in for_bob] == [(1, SyncType.RECALL, None), (2, SyncType.DELETE, bob)]
    assert [e.event_id for e in await messagedb.events_after(conv, 1, user_id=alice)] == [3]
    assert [e.event_id for e in await messagedb.events_after(conv, 0, user_id=alice, limit=1)] == [1]


async def test_cursors_only_move_forward(messagedb, conv, unique):
    user = f"erin-{unique}"
    other = f"group:{unique}-b"
    assert await messagedb.get_cursors(user, "phone") == {}
    await messagedb.advance_cursors([
        CursorUpdate(user, "phone", conv, seq=5, event_id=1),  # type: ignore[arg-type]
        CursorUpdate(user, "phone", other, seq=2),  # type: ignore[arg-type]
        CursorUpdate(user, "laptop", conv, seq=1),  # type: ignore[arg-type]
    ])
    await messagedb.advance_cursors([
        CursorUpdate(user, "phone", conv, seq=3, event_id=4),  # type: ignore[arg-type]  seq stale, event newer
    ])
    assert await messagedb.get_cursors(user, "phone") == {conv: Cursor(5, 4), other: Cursor(2, 0)}
    assert await messagedb.get_cursors(user, "laptop") == {conv: Cursor(1, 0)}
    await messagedb.advance_cursors([])


async def test_cursors_never_jump_over_a_gap(messagedb, conv, unique):
    """A range (after, to] moves the cursor only when it already reaches `after`; applied in order."""
    user = f"fred-{unique}"
    await messagedb.advance_cursors([
        CursorUpdate(user, "phone", conv, seq=102, after_seq=101),  # type: ignore[arg-type]  ahead of a gap: ignored
        CursorUpdate(user, "phone", conv, seq=20, after_seq=0, event_id=3, after_event_id=0),  # type: ignore[arg-type]
        CursorUpdate(user, "phone", conv, seq=40, after_seq=30),  # type: ignore[arg-type]  gap 21..30: ignored
        CursorUpdate(user, "phone", conv, seq=30, after_seq=20, event_id=9, after_event_id=5),  # type: ignore[arg-type]
    ])
    assert await messagedb.get_cursors(user, "phone") == {conv: Cursor(30, 3)}
    await messagedb.advance_cursors([
        CursorUpdate(user, "phone", conv, seq=10, after_seq=5, event_id=9, after_event_id=2),  # type: ignore[arg-type]
    ])
    assert await messagedb.get_cursors(user, "phone") == {conv: Cursor(30, 9)}  # seq never moves back


async def test_deleted_seqs_are_per_user(messagedb, conv, unique):
    alice, bob = f"alice-{unique}", f"bob-{unique}"
    await messagedb.append_event(_event(conv, SyncType.DELETE, actor=bob, for_user=bob, seq=3))
    await messagedb.append_event(_event(conv, SyncType.DELETE, actor=bob, for_user=bob, seq=9))
    await messagedb.append_event(_event(conv, SyncType.DELETE, actor=alice, for_user=alice, seq=4))
    await messagedb.append_event(_event(conv, SyncType.RECALL, actor=alice, seq=5))
    assert await messagedb.deleted_seqs(conv, bob, from_seq=1, to_seq=8) == {3}
    assert await messagedb.deleted_seqs(conv, alice, from_seq=1, to_seq=100) == {4}
    assert await messagedb.deleted_seqs(conv, f"carol-{unique}", from_seq=1, to_seq=100) == set()


async def test_membership(messagedb, unique):
    a, b = f"group:{unique}-a", f"group:{unique}-b"
    u1, u2, u3 = f"u1-{unique}", f"u2-{unique}", f"u3-{unique}"
    await messagedb.add_members(a, [u3, u1, u2])
    await messagedb.add_members(a, [u1])  # idempotent
    await messagedb.add_members(b, [u1])
    assert await messagedb.members(a) == [u1, u2, u3]
    assert await messagedb.conversations_of(u1) == [a, b]
    await messagedb.remove_members(a, [u1, f"nobody-{unique}"])
    assert await messagedb.members(a) == [u2, u3]
    assert await messagedb.conversations_of(u1) == [b]
    assert await messagedb.members(f"group:{unique}-none") == []


async def test_members_added_many_at_once(messagedb, unique):
    a, b = f"c2c:a-{unique}:b-{unique}", f"group:{unique}-m"
    u1, u2 = f"a-{unique}", f"b-{unique}"
    await messagedb.add_members(b, [u2], role="owner", visible_after_seq=4)
    await messagedb.add_members_many([(a, [u1, u2]), (b, [u1, u2])])
    await messagedb.add_members_many([(a, [u1])])  # idempotent
    await messagedb.add_members_many([])
    assert await messagedb.members(a) == [u1, u2]
    assert await messagedb.members(b) == [u1, u2]
    assert await messagedb.conversations_of(u1) == sorted([a, b])
    # An existing member keeps its role and visibility.
    roles = {m.user_id: (m.role, m.visible_after_seq) for m in await messagedb.group_members(b)}
    assert roles == {u1: ("member", 0), u2: ("owner", 4)}


async def test_data_survives_reopen(messagedb_opener, unique):
    conv = f"group:{unique}"
    db = messagedb_opener()
    await db.start()
    await db.migrate()
    await db.insert_messages([_msg(conv, 1), _msg(conv, 2)])
    await db.close()
    await db.close()  # idempotent
    again = messagedb_opener()
    await again.start()
    await again.start()  # idempotent
    assert await again.migrate() == []
    assert await again.max_seqs([conv]) == {conv: 2}


async def test_groups_keep_their_id_roles_and_visibility(messagedb, unique):
    from services.backends.messagedb import GroupRecord

    conv = f"group:{unique}-g"
    owner, late = f"olga-{unique}", f"lars-{unique}"
    record = GroupRecord(conv, "invite", "joined", 1_700_000_000_000)  # type: ignore[arg-type]
    assert await messagedb.get_group(conv) is None
    assert await messagedb.create_group(record) is True
    assert await messagedb.create_group(GroupRecord(conv, "open", "shared", 1)) is False  # type: ignore[arg-type]
    assert await messagedb.get_group(conv) == record
    await messagedb.add_members(conv, [owner], role="owner", joined_at=10)
    await messagedb.add_members(conv, [late], visible_after_seq=7, visible_after_event=3, joined_at=20)
    await messagedb.add_members(conv, [late], role="admin", joined_at=30)  # already a member: kept as is
    members = await messagedb.group_members(conv)
    assert [(m.user_id, m.role, m.visible_after_seq, m.visible_after_event, m.joined_at) for m in members] == [
        (owner, "owner", 0, 0, 10), (late, "member", 7, 3, 20)]
    assert await messagedb.set_member_role(conv, late, "admin") is True
    assert await messagedb.set_member_role(conv, f"nobody-{unique}", "admin") is False
    assert [m.role for m in await messagedb.group_members(conv)] == ["owner", "admin"]
    await messagedb.remove_members(conv, [owner, late])
    assert await messagedb.group_members(conv) == []
    assert await messagedb.get_group(conv) == record  # the id stays taken


async def test_read_position_and_last_event_id(messagedb, conv, unique):
    alice, bob = f"alice-{unique}", f"bob-{unique}"
    assert await messagedb.read_position(conv, alice) == 0
    assert await messagedb.last_event_id(conv) == 0
    await messagedb.append_event(_event(conv, SyncType.READ, actor=alice, seq=4))
    await messagedb.append_event(_event(conv, SyncType.READ, actor=bob, seq=9))
    await messagedb.append_event(_event(conv, SyncType.RECALL, actor=alice, seq=12))
    assert await messagedb.read_position(conv, alice) == 4
    assert await messagedb.read_position(conv, bob) == 9
    assert await messagedb.last_event_id(conv) == 3
