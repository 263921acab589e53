"""Findings of `flarectl check consistency` as alerts of the live picture (ARCHITECTURE §7a).

The check writes what it found missing to one ConfigStore key (`keys.CONSISTENCY_FINDINGS`);
the daemon reads it with the rest of its store view and raises one SEQ_GAP alert per
conversation. A key, not an RPC: the check already runs against the deployment's stores
(it needs no control-plane token, and works while the daemon is down: the alert shows when
it is back), the record survives a daemon restart, and `etcdctl get` shows it.

    record = merge_findings(old_record, findings, scope_conversation=None, complete=True, at=time.time())
    alerts = seq_gap_alerts(record)      # alert id -> alert, for Aggregator.extra_alerts

A run replaces what an earlier run of the same scope said: an unscoped run every
conversation, `--conversation C` that one; a `--since` run cannot see older seqs, so it only
adds. Bounded: at most MAX_CONVERSATIONS conversations, MAX_RANGES missing ranges each.
"""

from __future__ import annotations

from services.common import codec
from services.common.errors import InvalidInput

__all__ = ["MAX_CONVERSATIONS", "MAX_RANGES", "merge_findings", "missing_by_conversation", "parse_record",
           "seq_gap_alerts", "describe_missing"]

MAX_CONVERSATIONS = 500
MAX_RANGES = 20
MAX_RECORD_BYTES = 256 * 1024

# Finding kinds that mean "these seqs of this conversation are not stored": a hole in the
# numbering (seq_gap), or a row whose guard key still names its seq (row_missing, PostgreSQL).
_MISSING_KINDS = ("seq_gap", "row_missing")


def missing_by_conversation(findings: list[dict]) -> dict[str, list[list[int]]]:
    """conversation -> sorted [first, last] seq ranges that are missing."""
    out: dict[str, list[list[int]]] = {}
    for f in findings:
        conv, ids = f.get("conversation_id") or "", f.get("ids") or {}
        if f.get("kind") not in _MISSING_KINDS or not conv:
            continue
        if "first" in ids:
            span = [int(ids["first"]), int(ids["last"])]
        elif "seq" in ids:
            span = [int(ids["seq"]), int(ids["seq"])]
        else:
            continue
        out.setdefault(conv, []).append(span)
    return {conv: sorted(spans) for conv, spans in out.items()}


def describe_missing(spans: list[list[int]], total: int | None = None) -> str:
    text = ", ".join(f"{a}" if a == b else f"{a}..{b}" for a, b in spans)
    if total is not None and total > len(spans):
        text += f" (+{total - len(spans)} more ranges)"
    return text


def parse_record(raw: bytes | None) -> dict:
    """The stored record, or an empty one; a value that is not one is a named error."""
    if not raw:
        return {"conversations": {}}
    if len(raw) > MAX_RECORD_BYTES:
        raise InvalidInput(f"consistency findings: {len(raw)} bytes, more than {MAX_RECORD_BYTES}")
    try:
        record = codec.loads(raw)
    except codec.JSONDecodeError as exc:
        raise InvalidInput(f"consistency findings: not JSON: {exc}") from exc
    if not isinstance(record, dict) or not isinstance(record.get("conversations"), dict):
        raise InvalidInput("consistency findings: expected {\"conversations\": {...}}")
    return record


def merge_findings(old: dict, findings: list[dict], *, scope_conversation: str | None, complete: bool,
                   at: float) -> dict:
    """The record after a check run: `complete` is False for a --since run (it only adds)."""
    conversations = dict(old.get("conversations", {}))
    if complete:
        if scope_conversation is None:
            conversations = {}
        else:
            conversations.pop(scope_conversation, None)
    for conv, spans in missing_by_conversation(findings).items():
        conversations[conv] = {"missing": spans[:MAX_RANGES], "ranges": len(spans), "at": round(at, 3)}
    if len(conversations) > MAX_CONVERSATIONS:  # keep the newest findings
        newest = sorted(conversations.items(), key=lambda kv: (-kv[1].get("at", 0), kv[0]))[:MAX_CONVERSATIONS]
        conversations = dict(newest)
    return {"at": round(at, 3), "conversations": conversations}


def seq_gap_alerts(record: dict) -> dict[str, dict]:
    """One SEQ_GAP alert per conversation with missing seqs, in the aggregator's alert shape
    (its "instance" is the check, not a service instance; "conversation" and "missing" say
    where to look)."""
    alerts: dict[str, dict] = {}
    for conv, entry in sorted(record.get("conversations", {}).items()):
        spans = [list(s) for s in entry.get("missing", [])]
        if not spans:
            continue
        alert_id = f"SEQ_GAP:{conv}"
        alerts[alert_id] = {"id": alert_id, "alert": "SEQ_GAP", "instance": "check/consistency", "service": "check",
                            "instance_id": "consistency", "detail": conv, "conversation": conv, "missing": spans,
                            "found_at": entry.get("at", 0),
                            "reason": f"{conv} lacks seq {describe_missing(spans, entry.get('ranges'))}"}
    return alerts
