"""Replay into the store: put back what the MessageDB lost, without racing the live owner.

How replay and a partition's live owner (the store consumer) cooperate, ARCHITECTURE §11:

1. Replay reads only what the owner has committed (the plan's `stop`): a record the owner
   has not processed yet is not lost, only late, and two writers of one seq would collide.
2. A record whose msg_id is stored is skipped: it keeps its seq. A record whose
   (sender, client_msg_id) is stored under another msg_id, or that repeats a msg_id or key
   seen earlier in the log, was dropped by the owner too and never had a seq.
3. The missing ones are taken per conversation in log order, in runs between the nearest
   stored neighbours. The owner gave seqs in log order without gaps, so a run right after
   the stored seq p had p+1, p+2, ...; a run right before the stored seq n had ...n-1.
   When those seqs are free they are restored in place: every seq in a run anchored on a
   stored neighbour is below or next to a seq the owner already gave, and the owner only
   ever allocates above a conversation's max. The MessageDB's unique (conversation, seq)
   is the last guard: if the owner (its counters just reset) takes one of them first, the
   insert raises Conflict and the run goes to step 4 instead.
4. A run with no stored neighbour in reach, or whose seqs are now taken by other messages,
   is handed back to the owner: its records are produced again, unchanged (same msg_id), to
   the same topic and key. The owner persists them after the live traffic of the moment with
   fresh seqs in that order, and delivers them; a second copy is dropped by step 2's rule.

Neighbours are looked for in a context of records around the window (read, never applied).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

from services.backends.log import Log, LogRecord
from services.backends.messagedb import MessageDB
from services.common import codec
from services.common.errors import Conflict, InvalidInput
from services.common.model import Message

__all__ = ["Entry", "StoreTarget", "Tally"]

log = logging.getLogger("flare.replay")

_SEEN_LIMIT = 200_000  # keys remembered for in-log duplicate detection (resends are close together)


@dataclass(slots=True)
class Entry:
    record: LogRecord
    message: Message | None  # None: undecodable
    in_window: bool  # False: context, read for anchors only


@dataclass(slots=True)
class Tally:
    scanned: int = 0
    skipped: int = 0  # already stored (kept their seq)
    duplicates: int = 0  # the owner dropped them too (no seq)
    restored: int = 0  # put back with their original seq
    appended: int = 0  # handed to the live owner for a new seq
    errors: int = 0

    @property
    def applied(self) -> int:
        return self.restored + self.appended

    def add(self, kind: str, count: int = 1) -> None:
        setattr(self, kind, getattr(self, kind) + count)

    def to_dict(self) -> dict[str, int]:
        return {"scanned": self.scanned, "applied": self.applied, "restored": self.restored,
                "appended": self.appended, "skipped": self.skipped, "duplicates": self.duplicates,
                "errors": self.errors}

    @classmethod
    def from_dict(cls, data: dict) -> Tally:
        return cls(**{k: int(data.get(k, 0)) for k in ("scanned", "skipped", "duplicates", "restored",
                                                          "appended", "errors")})


@dataclass(slots=True)
class _Conversation:
    prev_seq: int | None = None
    run: list[Entry] = field(default_factory=list)


class _Partition:
    """Per partition: conversations' states, and which window offsets are decided."""

    def __init__(self) -> None:
        self.conversations: dict[str, _Conversation] = {}
        self.seen_ids: OrderedDict[int, None] = OrderedDict()
        self.seen_keys: OrderedDict[tuple[str, str], None] = OrderedDict()
        self.read_to = 0  # next offset to read
        self.pending: dict[int, str] = {}  # offset -> kind of window records decided above the floor
        self.pending_runs = 0
        self.earlier: dict[int, str] = {}  # decisions an interrupted attempt made above its checkpoint

    def remember(self, message: Message) -> bool:
        """False if this msg_id or (sender, client_msg_id) was seen earlier in the log."""
        key = (message.sender_id, message.client_msg_id)
        if message.msg_id in self.seen_ids or key in self.seen_keys:
            return False
        for seen, item in ((self.seen_ids, message.msg_id), (self.seen_keys, key)):
            seen[item] = None
            if len(seen) > _SEEN_LIMIT:
                seen.popitem(last=False)
        return True

    def floor(self) -> int:
        """Every window record below this offset is decided."""
        starts = [c.run[0].record.offset for c in self.conversations.values() if c.run]
        return min([self.read_to, *starts])


class StoreTarget:
    def __init__(self, *, db: MessageDB, log: Log, topic: str, dry_run: bool,
                 max_missing: int = 100_000) -> None:
        self._db = db
        self._log = log
        self._topic = topic
        self._dry_run = dry_run
        self._max_missing = max_missing
        self._partitions: dict[int, _Partition] = {}
        self.tally = Tally()
        self.appended_offsets: dict[int, int] = {}  # partition -> highest offset produced
        self.appended: list[Message] = []  # handed to the owner by this attempt

    def start_partition(self, partition: int, first_offset: int, *, decided: dict[int, str] | None = None) -> None:
        state = _Partition()
        state.read_to = first_offset
        state.earlier = dict(decided or {})
        self._partitions[partition] = state

    def undecided_tail(self, partition: int) -> dict[int, str]:
        """Decisions above the floor: the checkpoint keeps them with the floor."""
        return dict(self._partitions[partition].pending)

    # -- feeding ----------------------------------------------------------------------
    async def feed(self, partition: int, entries: Sequence[Entry]) -> None:
        state = self._partitions[partition]
        fresh = []
        for entry in entries:
            if entry.message is None:
                self._decide(state, entry, "errors")
                log.error("undecodable record %s/%s@%s", entry.record.topic, partition, entry.record.offset)
            elif state.remember(entry.message):
                fresh.append(entry)
            else:
                self._decide(state, entry, "duplicates")
        existing = await self._db.find_existing([e.message for e in fresh]) if fresh else {}
        for entry in fresh:
            message = entry.message
            assert message is not None
            conversation = state.conversations.setdefault(message.conversation_id, _Conversation())
            stored = existing.get(message.msg_id)
            if stored is None:
                conversation.run.append(entry)
                state.pending_runs += 1
                if state.pending_runs > self._max_missing:
                    raise InvalidInput(f"more than {self._max_missing} missing messages are waiting for a stored "
                                       "neighbour in one partition; replay a narrower window")
                continue
            if stored.msg_id != message.msg_id:  # a resend under another msg_id: never had a seq
                self._decide(state, entry, "duplicates")
                continue
            if conversation.run:
                await self._resolve(state, message.conversation_id, conversation, next_seq=stored.seq)
            conversation.prev_seq = stored.seq
            self._decide(state, entry, "skipped")
        if entries:
            state.read_to = entries[-1].record.offset + 1

    async def finish_partition(self, partition: int) -> None:
        state = self._partitions[partition]
        for conversation_id, conversation in state.conversations.items():
            if conversation.run:
                await self._resolve(state, conversation_id, conversation, next_seq=None)

    def floor(self, partition: int) -> int:
        return self._partitions[partition].floor()

    def settle(self, partition: int) -> None:
        """Fold the decisions below the partition's floor into the tally (what a checkpoint may keep)."""
        state = self._partitions[partition]
        floor = state.floor()
        for offset in [o for o in state.pending if o < floor]:
            kind = state.pending.pop(offset)
            self.tally.add("scanned")
            self.tally.add(kind)

    # -- deciding ---------------------------------------------------------------------
    def _decide(self, state: _Partition, entry: Entry, kind: str) -> None:
        if entry.in_window:
            state.pending[entry.record.offset] = state.earlier.pop(entry.record.offset, kind)

    async def _resolve(self, state: _Partition, conversation_id: str, conversation: _Conversation, *,
                       next_seq: int | None) -> None:
        run, conversation.run = conversation.run, []
        state.pending_runs -= len(run)
        to_apply = [e for e in run if e.in_window]
        if not to_apply:
            return  # lost outside the window too: a wider replay puts those back
        first = self._first_seq(conversation.prev_seq, next_seq, len(run))
        if first is not None and await self._seqs_free(conversation_id, first, len(run)):
            restored = [e.message.with_seq(first + i) for i, e in enumerate(run) if e.in_window]  # type: ignore[union-attr]
            if self._dry_run or await self._insert(restored):
                wrong = set() if self._dry_run else await self._not_stored_as(restored)
                for entry in to_apply:
                    self._decide(state, entry, "errors" if entry.message.msg_id in wrong else "restored")  # type: ignore[union-attr]
                return
        await self._hand_to_owner(to_apply)
        for entry in to_apply:
            self._decide(state, entry, "appended")

    @staticmethod
    def _first_seq(prev_seq: int | None, next_seq: int | None, count: int) -> int | None:
        if prev_seq is not None:
            return prev_seq + 1
        if next_seq is not None and next_seq - count >= 1:
            return next_seq - count
        return None

    async def _seqs_free(self, conversation_id: str, first: int, count: int) -> bool:
        taken = await self._db.messages_after(conversation_id, first - 1, limit=count)
        return all(m.seq > first + count - 1 for m in taken)

    async def _insert(self, messages: list[Message]) -> bool:
        try:
            await self._db.insert_messages(messages)
            return True
        except Conflict:
            # The live owner took one of these seqs an instant ago: give the run to it.
            log.warning("replay: seqs %s..%s of %s were taken meanwhile; handing the run to the live owner",
                        messages[0].seq, messages[-1].seq, messages[0].conversation_id)
            return False

    async def _not_stored_as(self, messages: list[Message]) -> set[int]:
        """msg_ids the MessageDB does not now hold with the seq just written: an adapter that
        skipped the insert because part of the lost row survived (a key index without its row)."""
        found = await self._db.find_existing(messages)
        wrong = {m.msg_id for m in messages
                 if (stored := found.get(m.msg_id)) is None or (stored.msg_id, stored.seq) != (m.msg_id, m.seq)}
        for msg_id in sorted(wrong):
            log.error("replay: message %s was written but is not stored with its seq; "
                      "run `flarectl check consistency`", msg_id)
        return wrong

    async def _hand_to_owner(self, entries: list[Entry]) -> None:
        if self._dry_run:
            return
        for entry in entries:  # one by one: per-conversation order is produce order
            meta = await self._log.produce(self._topic, entry.record.value, key=entry.record.key)
            self.appended.append(entry.message)  # type: ignore[arg-type]
            self.appended_offsets[meta.partition] = max(self.appended_offsets.get(meta.partition, -1), meta.offset)


async def not_persisted(db: MessageDB, messages: list[Message]) -> list[Message]:
    """Of the messages handed to the owner, those the MessageDB still does not hold."""
    missing: list[Message] = []
    for start in range(0, len(messages), 1000):
        batch = messages[start:start + 1000]
        found = await db.find_existing(batch)
        missing += [m for m in batch if m.msg_id not in found or found[m.msg_id].msg_id != m.msg_id]
    return missing


def decode(record: LogRecord) -> Message | None:
    try:
        return Message.from_wire(codec.loads(record.value))
    except (ValueError, KeyError, TypeError):
        return None
