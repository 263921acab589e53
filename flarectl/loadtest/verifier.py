"""Delivery bookkeeping per device, and the verdict over all of them.

Definitions (what the report's numbers mean):

- A device *has* a message once it got it over a live `message` frame or in a `sync_result`.
  It acks messages in seq order (a message past a gap waits, unacked, until sync fills the
  gap), so "acked" is exactly "seq <= the device's contiguous seq" for that conversation.
- duplicate: the device gets a msg_id it already acked, or the same msg_id twice over live
  frames within one connection. For a sync_result, "already acked" means covered by the
  cursors that sync request carried: a message that arrived (and was acked) live while the
  request was on its way crosses it and is counted as `crossed`, not as a duplicate; so is,
  once per message and connection, a live push of a message this connection's sync already
  returned (the push was in flight when the sync read the store). Getting
  a message live, unacked (held behind a gap), and again in a sync_result is not a
  duplicate either — that is how sync fills a gap.
- out of order: a live frame whose seq is lower than one already seen live for that
  conversation on the same connection.
- recovered: a (message, device) that the device first got from a sync it sent while
  connected (after a seq gap, or the final drain) rather than from the sync that follows a
  (re)connect: a live delivery the server dropped. Sync after (re)connect is normal.
- lost: a message that reached `stored` and that some recipient device never got by the
  end of the run (lost_deliveries counts the device/message pairs).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = ["DeviceLedger", "DeviceReceipts", "Verdict", "verify", "SYNC_CONNECT", "SYNC_GAP", "SYNC_FINAL"]

SYNC_CONNECT = "connect"
SYNC_GAP = "gap"
SYNC_FINAL = "final"


@dataclass(slots=True)
class DeviceReceipts:
    """What one device ended up with: everything up to `upto[conv]`, plus `extra[conv]` past a gap."""

    upto: dict[str, int] = field(default_factory=dict)
    extra: dict[str, list[int]] = field(default_factory=dict)

    def has(self, conversation_id: str, seq: int) -> bool:
        return seq <= self.upto.get(conversation_id, 0) or seq in self.extra.get(conversation_id, ())


@dataclass(slots=True)
class DeviceLedger:
    contiguous: dict[str, int] = field(default_factory=dict)
    waiting: dict[str, dict[int, tuple[int, int]]] = field(default_factory=dict)  # conv -> seq -> (msg_id, connection)
    live_max: dict[str, int] = field(default_factory=dict)  # this connection only
    synced_max: dict[str, int] = field(default_factory=dict)  # highest seq a sync brought, this connection only
    crossed_live: set[tuple[str, int]] = field(default_factory=set)  # this connection only
    sync_cursors: dict[str, int] = field(default_factory=dict)  # what the last sync request said we had
    connection: int = 0
    duplicates: int = 0
    crossed: int = 0
    dup_kinds: dict[str, int] = field(default_factory=dict)
    out_of_order: int = 0
    live: int = 0
    via_sync: int = 0
    recovered: int = 0

    def new_connection(self) -> None:
        self.connection += 1
        self.live_max.clear()
        self.synced_max.clear()
        self.crossed_live.clear()

    def on_live(self, conversation_id: str, seq: int, msg_id: int) -> tuple[list[tuple[str, int, int]], bool]:
        """A live `message` frame. Returns (acks to send, whether a seq gap is now open)."""
        if seq < self.live_max.get(conversation_id, 0):
            self.out_of_order += 1
        else:
            self.live_max[conversation_id] = seq
        if seq <= self.contiguous.get(conversation_id, 0):
            if seq <= self.synced_max.get(conversation_id, 0) and (conversation_id, seq) not in self.crossed_live:
                # a push that was on its way while this connection's sync answered with the
                # same message: once per message and connection, that is the race, not a duplicate
                self.crossed_live.add((conversation_id, seq))
                self.crossed += 1
            else:
                self._duplicate("live_after_ack")
            return [], self.has_gap(conversation_id)
        waiting = self.waiting.setdefault(conversation_id, {})
        if seq in waiting:
            if waiting[seq][1] == self.connection:
                self._duplicate("live_twice")
            return [], True
        self.live += 1
        waiting[seq] = (msg_id, self.connection)
        acks = self._advance(conversation_id)
        return acks, self.has_gap(conversation_id)

    def on_sync(self, conversation_id: str, messages: Iterable[tuple[int, int]], *, kind: str) -> list[tuple[str, int, int]]:
        """(seq, msg_id) pairs from one conversation of a sync_result. Returns the acks to send."""
        waiting = self.waiting.setdefault(conversation_id, {})
        for seq, msg_id in sorted(messages):
            self.synced_max[conversation_id] = max(seq, self.synced_max.get(conversation_id, 0))
            if seq <= self.sync_cursors.get(conversation_id, 0):
                self._duplicate("sync_below_cursor")  # the request said we had it
                continue
            if seq <= self.contiguous.get(conversation_id, 0):
                self.crossed += 1  # got (and acked) live after the request left: the server could not know
                continue
            if seq in waiting:
                continue
            self.via_sync += 1
            if kind != SYNC_CONNECT:
                self.recovered += 1
            waiting[seq] = (msg_id, self.connection)
        return self._advance(conversation_id)

    def _duplicate(self, kind: str) -> None:
        self.duplicates += 1
        self.dup_kinds[kind] = self.dup_kinds.get(kind, 0) + 1

    def has_gap(self, conversation_id: str) -> bool:
        return bool(self.waiting.get(conversation_id))

    def any_gap(self) -> bool:
        return any(self.waiting.values())

    def sync_request(self) -> dict[str, int]:
        """The cursors for a sync request (the contiguous seqs), remembered to judge its answer."""
        self.sync_cursors = dict(self.contiguous)
        return self.sync_cursors

    def cursors(self) -> dict[str, dict[str, int]]:
        return {conv: {"seq": seq} for conv, seq in self.contiguous.items()}

    def receipts(self) -> DeviceReceipts:
        return DeviceReceipts(
            upto=dict(self.contiguous),
            extra={conv: sorted(w) for conv, w in self.waiting.items() if w},
        )

    def _advance(self, conversation_id: str) -> list[tuple[str, int, int]]:
        waiting = self.waiting[conversation_id]
        seq = self.contiguous.get(conversation_id, 0)
        acks = []
        while seq + 1 in waiting:
            seq += 1
            acks.append((conversation_id, seq, waiting.pop(seq)[0]))
        if acks:
            self.contiguous[conversation_id] = seq
        return acks


@dataclass(slots=True)
class Verdict:
    stored: int = 0
    deliveries_expected: int = 0
    lost_messages: int = 0
    lost_deliveries: int = 0
    never_seen: int = 0  # stored messages no device got at all
    seq_conflicts: int = 0  # one msg_id seen with two different (conversation, seq)
    lost_sample: list[dict[str, object]] = field(default_factory=list)


def verify(
    *,
    stored: Mapping[int, str],
    seq_of: Mapping[int, tuple[str, int]],
    devices: Mapping[str, DeviceReceipts],
    recipients: Mapping[str, list[str]] | None = None,
    recipients_of=None,
    seq_conflicts: int = 0,
    sample: int = 10,
) -> Verdict:
    """Check every stored message (msg_id -> conversation) against every recipient device.

    `seq_of` maps msg_ids to the (conversation, seq) any device saw them with; a stored
    message missing there reached nobody. Recipients come from `recipients[conv]` or
    `recipients_of(conv)`.
    """
    verdict = Verdict(stored=len(stored), seq_conflicts=seq_conflicts)
    empty = DeviceReceipts()
    for msg_id, conversation_id in stored.items():
        targets = recipients[conversation_id] if recipients is not None else recipients_of(conversation_id)
        verdict.deliveries_expected += len(targets)
        located = seq_of.get(msg_id)
        if located is None:
            verdict.never_seen += 1
            missing = list(targets)
        else:
            conv, seq = located
            missing = [d for d in targets if not devices.get(d, empty).has(conv, seq)]
        if missing:
            verdict.lost_messages += 1
            verdict.lost_deliveries += len(missing)
            if len(verdict.lost_sample) < sample:
                verdict.lost_sample.append({
                    "msg_id": str(msg_id), "conversation_id": conversation_id,
                    "seq": located[1] if located else None, "missing_devices": missing[:5],
                })
    return verdict
