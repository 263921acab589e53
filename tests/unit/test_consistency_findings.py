"""controlplane/findings.py: what a check run leaves for the daemon's SEQ_GAP alerts — the
scope rules (a run replaces its own scope, a --since run only adds), the bounds, and a bad
stored value named rather than raised from the daemon's view."""

from __future__ import annotations

import pytest

from controlplane.findings import MAX_CONVERSATIONS, MAX_RANGES, merge_findings, parse_record, seq_gap_alerts
from services.common import codec
from services.common.errors import InvalidInput


def gap(conv: str, first: int, last: int) -> dict:
    return {"kind": "seq_gap", "conversation_id": conv, "detail": "", "ids": {"first": first, "last": last}}


def test_gaps_and_missing_rows_become_one_alert_per_conversation():
    findings = [gap("c2c:a:b", 7, 7), gap("c2c:a:b", 3, 4),
                {"kind": "row_missing", "conversation_id": "group:g", "detail": "", "ids": {"msg_id": 9, "seq": 12}},
                {"kind": "cursor_beyond_max", "conversation_id": "c2c:a:c", "detail": "", "ids": {}}]
    alerts = seq_gap_alerts(merge_findings({}, findings, scope_conversation=None, complete=True, at=100.0))
    assert sorted(alerts) == ["SEQ_GAP:c2c:a:b", "SEQ_GAP:group:g"]
    assert alerts["SEQ_GAP:c2c:a:b"]["reason"] == "c2c:a:b lacks seq 3..4, 7"
    assert alerts["SEQ_GAP:c2c:a:b"]["missing"] == [[3, 4], [7, 7]]
    assert alerts["SEQ_GAP:group:g"]["reason"] == "group:g lacks seq 12"


def test_a_run_replaces_its_own_scope_and_a_since_run_only_adds():
    record = merge_findings({}, [gap("c2c:a:b", 3, 3), gap("c2c:a:c", 5, 5)], scope_conversation=None,
                            complete=True, at=1.0)
    scoped = merge_findings(record, [], scope_conversation="c2c:a:b", complete=True, at=2.0)
    assert sorted(scoped["conversations"]) == ["c2c:a:c"]  # a clean --conversation run clears that one only
    since = merge_findings(scoped, [gap("c2c:x:y", 1, 1)], scope_conversation=None, complete=False, at=3.0)
    assert sorted(since["conversations"]) == ["c2c:a:c", "c2c:x:y"]  # --since cannot vouch for older seqs
    clean = merge_findings(since, [], scope_conversation=None, complete=True, at=4.0)
    assert clean["conversations"] == {} and seq_gap_alerts(clean) == {}


def test_the_record_is_bounded():
    many = [gap(f"c2c:a:u{i:04d}", 1, 1) for i in range(MAX_CONVERSATIONS + 50)]
    record = merge_findings({}, many + [gap("c2c:a:u0000", n * 2, n * 2) for n in range(1, 40)],
                            scope_conversation=None, complete=True, at=1.0)
    assert len(record["conversations"]) == MAX_CONVERSATIONS
    assert len(codec.dumps(record)) < 256 * 1024
    entry = record["conversations"]["c2c:a:u0000"]  # equal times: the first ids by name are kept
    assert len(entry["missing"]) == MAX_RANGES and entry["ranges"] == 40
    assert seq_gap_alerts(record)["SEQ_GAP:c2c:a:u0000"]["reason"].endswith("(+20 more ranges)")


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b'{"conversations": 3}'])
def test_a_value_that_is_no_record_is_a_named_error(raw):
    with pytest.raises(InvalidInput, match="consistency findings"):
        parse_record(raw)
    assert parse_record(None) == {"conversations": {}}
