"""`flarectl check consistency`: is every message whole, once, across the log, L1 and L2?

Findings, by kind (each names the ids to look at):
  seq_gap              a conversation lacks seqs between 1 (or the --since window) and its max
  seq_duplicate        two different messages hold one (conversation, seq)
  message_duplicate    one msg_id is in more than one place (L1 and L2, or two chunks)
  row_unreadable       an L1 row whose body does not parse
  row_missing          a guard key (message_keys / archived_keys) with its row in neither L1 nor L2
  key_missing          PostgreSQL: an L1 row without its message_keys guard
  key_mismatch         PostgreSQL: a row and its guard disagree on conversation or seq
  log_record_missing   a consumed log record whose message is stored nowhere
  log_order_mismatch   stored seqs of a conversation do not follow its log order
  l2_object_missing / l2_object_mismatch / l2_manifest_missing   an archive chunk is gone or differs
  l2_orphan_object     an object under the archive prefix that no chunk names
  l2_chunk_pending     a chunk an interrupted archive run left (rerun `flarectl archive run`)
  cursor_beyond_max    a device cursor past the conversation's highest seq
  membership_missing / membership_stranger / membership_invalid / conversation_without_members
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field

from services.backends.log import Log
from services.backends.messagedb import MessageDB, StoredKey
from services.backends.objectstore import ObjectStore
from services.common import codec
from services.common.errors import FlareError
from services.common.model import Message, c2c_members, conversation_kind

from .archiver import ArchivePolicy, Archiver

__all__ = ["Finding", "ConsistencyReport", "check_consistency", "LogScope"]


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str
    detail: str
    conversation_id: str = ""
    ids: dict = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "conversation_id": self.conversation_id, "detail": self.detail, "ids": self.ids}


@dataclass(slots=True)
class ConsistencyReport:
    findings: list[Finding] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def add(self, kind: str, detail: str, conversation_id: str = "", **ids: object) -> None:
        self.findings.append(Finding(kind, detail, conversation_id, ids))


@dataclass(frozen=True, slots=True)
class LogScope:
    log: Log
    topic: str
    group: str  # the store's consumer group: records below its committed offsets are persisted
    max_records: int = 1_000_000
    timeout_s: float = 60.0


def _ranges(seqs: list[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for s in seqs:
        if out and s == out[-1][1] + 1:
            out[-1] = (out[-1][0], s)
        else:
            out.append((s, s))
    return out


async def check_consistency(db: MessageDB, objects: ObjectStore, policy: ArchivePolicy, *,
                            conversation_id: str | None = None, since_ms: int | None = None,
                            log: LogScope | None = None) -> ConsistencyReport:
    report = ConsistencyReport()
    keys = await db.stored_keys(conversation_id=conversation_id, since_ms=since_ms)
    l1 = [k for k in keys if k.where == "l1"]
    guards = {k.msg_id: k for k in keys if k.where == "key"}
    report.checked["l1_rows"] = len(l1)
    guards_cover_l1 = db.dialect == "postgres"  # type: ignore[attr-defined]

    l2, unknown = await _check_l2(db, objects, policy, report, conversation_id=conversation_id, since_ms=since_ms)
    report.checked["l2_rows"] = len(l2)

    # where each message is
    places: dict[int, list[str]] = defaultdict(list)
    for k in l1:
        places[k.msg_id].append("L1")
        if not k.readable:
            report.add("row_unreadable", f"L1 row {k.msg_id} (seq {k.seq}) has a body that is not JSON",
                       k.conversation_id, msg_id=k.msg_id, seq=k.seq)
        if guards_cover_l1:
            guard = guards.get(k.msg_id)
            if guard is None:
                report.add("key_missing", f"L1 row {k.msg_id} has no message_keys row", k.conversation_id,
                           msg_id=k.msg_id)
            elif (guard.conversation_id, guard.seq) != (k.conversation_id, k.seq):
                report.add("key_mismatch", f"L1 row {k.msg_id} is {k.conversation_id}#{k.seq}, its key says "
                           f"{guard.conversation_id}#{guard.seq}", k.conversation_id, msg_id=k.msg_id,
                           row_seq=k.seq, key_seq=guard.seq)
    for m, chunk_id in l2:
        places[m.msg_id].append(f"L2:{chunk_id}")
    for msg_id, where in places.items():
        if len(where) > 1:
            report.add("message_duplicate", f"message {msg_id} is in {', '.join(where)}", msg_id=msg_id, places=where)
    l1_ids = {k.msg_id for k in l1}
    l2_ids = {m.msg_id for m, _ in l2}
    for msg_id, guard in guards.items():
        if msg_id not in l1_ids and msg_id not in l2_ids and not _covered(unknown, guard.conversation_id, guard.seq):
            report.add("row_missing", f"message {msg_id} ({guard.conversation_id}#{guard.seq}) has a key but no row "
                       "in L1 or L2", guard.conversation_id, msg_id=msg_id, seq=guard.seq)

    # seqs per conversation: duplicates and gaps across L1 ∪ L2 (guard keys count as present:
    # a lost row is reported once, as row_missing, not again as a gap)
    by_conversation: dict[str, dict[int, set[int]]] = defaultdict(lambda: defaultdict(set))
    for k in l1:
        by_conversation[k.conversation_id][k.seq].add(k.msg_id)
    for m, _ in l2:
        by_conversation[m.conversation_id][m.seq].add(m.msg_id)
    for g in guards.values():
        by_conversation[g.conversation_id][g.seq].add(g.msg_id)
    for conv, seqs in sorted(by_conversation.items()):
        for seq, ids in sorted(seqs.items()):
            if len(ids) > 1:
                report.add("seq_duplicate", f"{conv}#{seq} is held by {len(ids)} messages", conv, seq=seq,
                           msg_ids=sorted(ids))
        present = set(seqs) | {s for lo, hi in unknown.get(conv, ()) for s in range(lo, hi + 1)}
        low = 1 if since_ms is None else min(present)
        for a, b in _ranges(sorted(set(range(low, max(present) + 1)) - present)):
            report.add("seq_gap", f"{conv} lacks seq {a}" + (f"..{b}" if b > a else ""), conv, first=a, last=b)
    report.checked["conversations"] = len(by_conversation)

    for c in await db.cursors_beyond_max(conversation_id=conversation_id):
        report.add("cursor_beyond_max", f"{c.user_id}/{c.device_id} is at {c.conversation_id}#{c.seq}, max is "
                   f"{c.max_seq}", c.conversation_id, user_id=c.user_id, device_id=c.device_id, seq=c.seq,
                   max_seq=c.max_seq)

    await _check_membership(db, report, set(by_conversation), conversation_id)
    if log is not None:
        await _check_log(log, report, keys, conversation_id=conversation_id, since_ms=since_ms)
    return report


def _covered(unknown: dict[str, list[tuple[int, int]]], conv: str, seq: int) -> bool:
    return any(lo <= seq <= hi for lo, hi in unknown.get(conv, ()))


async def _check_l2(db: MessageDB, objects: ObjectStore, policy: ArchivePolicy, report: ConsistencyReport, *,
                    conversation_id: str | None, since_ms: int | None):
    """Rows of every readable archived chunk (restricted to its catalog ranges); seqs of
    unreadable ones, per conversation, so they are not reported again as gaps."""
    archiver = Archiver(db, objects, policy)
    chunks = await db.archive_chunks()
    rows: list[tuple[Message, str]] = []
    unknown: dict[str, list[tuple[int, int]]] = defaultdict(list)
    named = set()
    for chunk in chunks:
        named.update((chunk.object_key, chunk.manifest_key))
        if chunk.state == "pending":
            report.add("l2_chunk_pending", f"chunk {chunk.chunk_id} was left by an interrupted archive run; "
                       "rerun `flarectl archive run`", chunk_id=chunk.chunk_id)
            continue
        ranges = [r for r in chunk.ranges if (conversation_id is None or r.conversation_id == conversation_id)
                  and (since_ms is None or r.max_created_ms >= since_ms)]
        if chunk.state != "archived" or not ranges:
            continue
        report.checked["l2_chunks"] = report.checked.get("l2_chunks", 0) + 1
        try:
            manifest = await archiver.read_manifest(chunk)
        except FlareError as exc:
            kind = "l2_manifest_missing" if exc.code == "not_found" else "l2_object_mismatch"
            report.add(kind, f"chunk {chunk.chunk_id}: manifest {chunk.manifest_key}: {exc}", chunk_id=chunk.chunk_id)
            for r in ranges:
                unknown[r.conversation_id].append((r.min_seq, r.max_seq))
            continue
        try:
            got = await archiver.verified_rows(manifest)
            if manifest.sha256 != chunk.sha256:
                raise FlareError(f"chunk {chunk.chunk_id}: manifest sha256 differs from the L1 catalog")
        except FlareError as exc:
            kind = "l2_object_missing" if "is missing" in str(exc) else "l2_object_mismatch"
            report.add(kind, str(exc), chunk_id=chunk.chunk_id, object_key=chunk.object_key)
            for r in ranges:
                unknown[r.conversation_id].append((r.min_seq, r.max_seq))
            continue
        for m in got:
            if any(r.conversation_id == m.conversation_id and r.min_seq <= m.seq <= r.max_seq for r in ranges) and (
                    since_ms is None or m.created_at >= since_ms):
                rows.append((m, chunk.chunk_id))
    if conversation_id is None:
        for info in await objects.list(policy.prefix):
            if info.key not in named:
                report.add("l2_orphan_object", f"{info.key} is under the archive prefix but no chunk names it",
                           object_key=info.key)
    return rows, unknown


async def _check_membership(db: MessageDB, report: ConsistencyReport, conversations: set[str],
                            conversation_id: str | None) -> None:
    members: dict[str, set[str]] = defaultdict(set)
    for conv, user in await db.member_rows(conversation_id=conversation_id):
        members[conv].add(user)
    for conv in sorted(set(members) | conversations):
        try:
            kind = conversation_kind(conv)
        except ValueError as exc:
            report.add("membership_invalid", f"{conv!r} is not a conversation id ({exc})", conv)
            continue
        if kind == "c2c":
            parties = set(c2c_members(conv))
            if conv in conversations and not parties <= members[conv]:
                missing = sorted(parties - members[conv])
                report.add("membership_missing", f"{conv} has messages but {', '.join(missing)} not as member(s)",
                           conv, users=missing)
            strangers = sorted(members[conv] - parties)
            if strangers:
                report.add("membership_stranger", f"{conv} lists {', '.join(strangers)}, not one of its two users",
                           conv, users=strangers)
        elif conv in conversations and not members[conv]:
            report.add("conversation_without_members", f"{conv} has messages but no members", conv)


async def _check_log(scope: LogScope, report: ConsistencyReport, keys: list[StoredKey], *,
                     conversation_id: str | None, since_ms: int | None) -> None:
    by_id = {k.msg_id: k for k in keys if k.where == "l1"} | {k.msg_id: k for k in keys if k.where == "key"}
    by_client = {(k.sender_id, k.client_msg_id): k for k in by_id.values()}
    try:
        records = await _consumed_records(scope)
    except FlareError as exc:
        report.skipped.append(f"log: {exc}")
        return
    report.checked["log_records"] = len(records)
    last_seq: dict[str, tuple[int, int]] = {}
    for record in records:
        try:
            m = Message.from_wire(codec.loads(record.value))
        except (ValueError, KeyError, TypeError):
            report.add("log_record_missing", f"log record {record.partition}@{record.offset} is not a message",
                       partition=record.partition, offset=record.offset)
            continue
        if (conversation_id is not None and m.conversation_id != conversation_id) or (
                since_ms is not None and m.created_at < since_ms):
            continue
        stored = by_id.get(m.msg_id)
        if stored is None:
            if (m.sender_id, m.client_msg_id) in by_client:
                continue  # a resend the store dropped as a duplicate: stored under the first msg_id
            report.add("log_record_missing", f"log record {record.partition}@{record.offset} (message {m.msg_id}) "
                       "was consumed but is stored nowhere", m.conversation_id, msg_id=m.msg_id,
                       partition=record.partition, offset=record.offset)
            continue
        previous = last_seq.get(m.conversation_id)
        if previous is not None and stored.seq <= previous[1] and previous[0] != m.msg_id:
            report.add("log_order_mismatch", f"{m.conversation_id}: message {m.msg_id} comes after {previous[0]} in "
                       f"the log but has seq {stored.seq} <= {previous[1]}", m.conversation_id, msg_id=m.msg_id,
                       seq=stored.seq, previous_msg_id=previous[0], previous_seq=previous[1])
        if previous is None or stored.seq > previous[1]:
            last_seq[m.conversation_id] = (m.msg_id, stored.seq)


async def _consumed_records(scope: LogScope) -> list:
    begin = await scope.log.beginning_offsets(scope.topic)
    committed = await scope.log.committed_offsets(scope.group, scope.topic)
    targets = {p: committed.get(p, begin[p]) for p in begin}
    wanted = {p for p in begin if targets[p] > begin[p]}
    if not wanted:
        return []
    consumer = scope.log.consumer(f"flarectl-check-{uuid.uuid4().hex[:8]}", [scope.topic])
    await consumer.start()
    records = []
    try:
        deadline = time.monotonic() + scope.timeout_s
        while len(consumer.assignment()) < len(begin):
            if time.monotonic() > deadline:
                raise FlareError("the log consumer got no partitions in time")
            await consumer.getmany(timeout_ms=200, max_records=1)
        for tp in consumer.assignment():
            await consumer.seek(tp, begin[tp.partition])
        positions = dict(begin)
        while any(positions[p] < targets[p] for p in wanted):
            if time.monotonic() > deadline or len(records) >= scope.max_records:
                raise FlareError(f"read {len(records)} log records before giving up")
            for tp, batch in (await consumer.getmany(timeout_ms=500, max_records=1000)).items():
                for r in batch:
                    positions[tp.partition] = r.offset + 1
                    if r.offset < targets[tp.partition]:
                        records.append(r)
    finally:
        await consumer.stop()
    records.sort(key=lambda r: (r.partition, r.offset))
    return records
