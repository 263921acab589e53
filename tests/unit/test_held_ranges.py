"""What an ack proves (services/gateway/held.py) and how held ranges merge (services/sync/ranges.py)."""

from __future__ import annotations

from services.gateway.held import HeldFrames
from services.sync.ranges import apply_ranges, merge_range

C = "c2c:alice:bob"


def test_an_ack_of_a_live_seq_proves_the_live_run_up_to_it_and_everything_queued_before():
    held = HeldFrames()
    held.page(C, after_seq=0, next_seq=20, after_event=0, next_event=2)
    for seq in (102, 103, 104):
        held.live(C, seq)
    proof = held.ack(C, seq=103)
    assert proof.seqs == [(0, 20), (101, 103)] and proof.events == [(0, 2)]
    assert held.ack(C, seq=104).seqs == [(103, 104)]  # the rest of the run


def test_an_ack_matches_the_first_frame_that_carried_the_seq():
    held = HeldFrames()
    held.live(C, 30)  # live first ...
    held.page(C, after_seq=20, next_seq=40, after_event=0, next_event=0)  # ... then a page with 30 again
    assert held.ack(C, seq=30).seqs == [(29, 30)]  # the page may not have arrived yet
    assert held.ack(C, seq=40).seqs == [(20, 40)]


def test_an_events_only_page_is_proved_by_its_event_id_and_unknown_acks_prove_one():
    held = HeldFrames()
    held.page(C, after_seq=5, next_seq=5, after_event=3, next_event=9)
    assert held.ack(C, seq=5).seqs == [(4, 5)]  # never sent on this connection: just that one
    proof = held.ack(C, event_id=9)
    assert proof.events == [(3, 9)] and proof.seqs == []


def test_merge_range_keeps_sorted_disjoint_runs_and_apply_never_jumps_a_gap():
    runs: list[list[int]] = []
    for after, to in ((101, 102), (0, 20), (20, 40), (50, 60)):
        merge_range(runs, after, to)
    assert runs == [[0, 40], [50, 60], [101, 102]]
    assert apply_ranges(0, runs) == 40
    assert apply_ranges(55, runs) == 60
    assert apply_ranges(45, runs) == 45
    merge_range(runs, 40, 50)
    assert runs == [[0, 60], [101, 102]]
