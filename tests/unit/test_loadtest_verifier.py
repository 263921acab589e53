"""Lost / duplicated / out-of-order detection on synthetic event streams."""

from __future__ import annotations

from flarectl.loadtest.verifier import SYNC_CONNECT, SYNC_FINAL, SYNC_GAP, DeviceLedger, DeviceReceipts, verify

C = "c2c:alice:bob"
G = "group:g1"


def test_in_order_live_stream_is_acked_one_by_one() -> None:
    ledger = DeviceLedger()
    ledger.new_connection()
    for seq in range(1, 4):
        acks, gap = ledger.on_live(C, seq, 100 + seq)
        assert acks == [(C, seq, 100 + seq)] and not gap
    assert (ledger.duplicates, ledger.out_of_order, ledger.live) == (0, 0, 3)
    assert ledger.receipts() == DeviceReceipts(upto={C: 3}, extra={})


def test_gap_holds_acks_until_sync_fills_it_and_is_not_a_duplicate() -> None:
    ledger = DeviceLedger()
    ledger.new_connection()
    ledger.on_live(C, 1, 101)
    acks, gap = ledger.on_live(C, 3, 103)  # 2 was dropped
    assert acks == [] and gap
    # the gap sync returns 2 and 3 (3 was received live but not acked: not a duplicate)
    acks = ledger.on_sync(C, [(2, 102), (3, 103)], kind=SYNC_GAP)
    assert acks == [(C, 2, 102), (C, 3, 103)]
    assert ledger.duplicates == 0 and ledger.recovered == 1 and ledger.via_sync == 1
    assert not ledger.any_gap()


def test_same_message_twice_live_on_one_connection_is_a_duplicate() -> None:
    ledger = DeviceLedger()
    ledger.new_connection()
    ledger.on_live(C, 1, 101)
    ledger.on_live(C, 1, 101)
    assert ledger.duplicates == 1
    # also past a gap (not yet acked) on the same connection
    ledger.on_live(C, 3, 103)
    ledger.on_live(C, 3, 103)
    assert ledger.duplicates == 2


def test_unacked_message_again_on_a_new_connection_is_not_a_duplicate() -> None:
    ledger = DeviceLedger()
    ledger.new_connection()
    ledger.on_live(C, 2, 102)  # past a gap: held, unacked
    ledger.new_connection()
    ledger.on_sync(C, [(1, 101), (2, 102)], kind=SYNC_CONNECT)
    assert ledger.duplicates == 0 and ledger.recovered == 0
    assert ledger.contiguous[C] == 2


def test_acked_message_delivered_again_is_a_duplicate_whichever_way() -> None:
    ledger = DeviceLedger()
    ledger.new_connection()
    ledger.on_live(C, 1, 101)
    ledger.new_connection()
    ledger.on_live(C, 1, 101)  # live again after reconnect
    assert ledger.sync_request() == {C: 1}
    ledger.on_sync(C, [(1, 101)], kind=SYNC_CONNECT)  # and in a sync whose cursor said we had it
    assert ledger.duplicates == 2
    assert ledger.dup_kinds == {"live_after_ack": 1, "sync_below_cursor": 1}


def test_live_copy_crossing_a_sync_request_is_not_a_duplicate() -> None:
    ledger = DeviceLedger()
    ledger.new_connection()
    ledger.sync_request()  # cursor: nothing
    ledger.on_live(C, 1, 101)  # arrives (and is acked) while the sync is on its way
    ledger.on_sync(C, [(1, 101), (2, 102)], kind=SYNC_CONNECT)
    assert (ledger.duplicates, ledger.crossed, ledger.contiguous[C]) == (0, 1, 2)


def test_push_in_flight_behind_a_sync_result_crosses_once_per_connection() -> None:
    ledger = DeviceLedger()
    ledger.new_connection()
    ledger.sync_request()
    ledger.on_sync(C, [(1, 101), (2, 102)], kind=SYNC_CONNECT)
    ledger.on_live(C, 2, 102)  # the push was on its way when the sync read the store
    assert (ledger.duplicates, ledger.crossed) == (0, 1)
    ledger.on_live(C, 2, 102)  # a second live copy is a duplicate
    assert ledger.dup_kinds == {"live_after_ack": 1}


def test_out_of_order_is_per_connection_and_per_conversation() -> None:
    ledger = DeviceLedger()
    ledger.new_connection()
    ledger.on_live(C, 2, 102)
    ledger.on_live(G, 1, 201)  # another conversation: no effect
    ledger.on_live(C, 1, 101)  # lower than 2 on this connection
    assert ledger.out_of_order == 1
    assert ledger.duplicates == 0
    assert ledger.contiguous[C] == 2
    ledger.new_connection()
    ledger.on_live(C, 3, 103)
    assert ledger.out_of_order == 1


def test_sync_after_connect_is_not_recovery_but_final_sync_is() -> None:
    ledger = DeviceLedger()
    ledger.new_connection()
    ledger.on_sync(C, [(1, 101)], kind=SYNC_CONNECT)
    ledger.on_sync(C, [(2, 102)], kind=SYNC_FINAL)
    assert (ledger.via_sync, ledger.recovered) == (2, 1)


def test_cursors_are_the_contiguous_seqs() -> None:
    ledger = DeviceLedger()
    ledger.new_connection()
    ledger.on_live(C, 1, 101)
    ledger.on_live(C, 3, 103)
    assert ledger.cursors() == {C: {"seq": 1}}
    assert ledger.receipts() == DeviceReceipts(upto={C: 1}, extra={C: [3]})


def _recipients(conversation_id: str) -> list[str]:
    return {C: ["alice/d0", "alice/d1", "bob/d0"], G: ["alice/d0", "alice/d1", "bob/d0", "carol/d0"]}[conversation_id]


def test_verify_finds_lost_deliveries_and_unseen_messages() -> None:
    stored = {101: C, 102: C, 103: C, 201: G}
    seq_of = {101: (C, 1), 102: (C, 2), 103: (C, 3), 201: (G, 1)}  # 999 stored below, seen by nobody
    devices = {
        "alice/d0": DeviceReceipts(upto={C: 3, G: 1}),
        "alice/d1": DeviceReceipts(upto={C: 1, G: 1}, extra={C: [3]}),  # missed seq 2
        "bob/d0": DeviceReceipts(upto={C: 3, G: 1}),
        # carol/d0 never got anything
    }
    verdict = verify(stored={**stored, 999: C}, seq_of=seq_of, devices=devices, recipients_of=_recipients)
    assert verdict.stored == 5
    assert verdict.deliveries_expected == 3 * 4 + 4
    assert verdict.never_seen == 1
    assert verdict.lost_messages == 3  # 102 (alice/d1), 201 (carol/d0), 999 (everyone)
    assert verdict.lost_deliveries == 1 + 1 + 3
    lost = {entry["msg_id"]: entry["missing_devices"] for entry in verdict.lost_sample}
    assert lost == {"102": ["alice/d1"], "201": ["carol/d0"], "999": _recipients(C)}


def test_verify_all_delivered() -> None:
    devices = {d: DeviceReceipts(upto={C: 2, G: 1}) for d in _recipients(G)}
    verdict = verify(stored={101: C, 102: C, 201: G}, seq_of={101: (C, 1), 102: (C, 2), 201: (G, 1)},
                     devices=devices, recipients_of=_recipients)
    assert (verdict.lost_messages, verdict.lost_deliveries, verdict.never_seen) == (0, 0, 0)
