"""Held ranges: what a device has proven it holds of one conversation, as (after, to] runs.

Shared by message-sync's cursor buffer and the gRPC client's ack buffer, which both merge
acks before writing them; see MessageDB.advance_cursors for how a run moves a cursor.
"""

from __future__ import annotations

__all__ = ["apply_ranges", "merge_range"]

_MAX_RUNS = 32  # held ranges kept per (device, conversation, column) while waiting for a flush


def merge_range(runs: list[list[int]], after: int, to: int) -> None:
    """Add the held range (after, to] to sorted, disjoint `runs` ([after, to] pairs),
    merging what overlaps or touches. Beyond _MAX_RUNS the highest run is dropped: losing
    a held range only means those messages are offered again."""
    if to <= after:
        return
    merged = [after, to]
    kept: list[list[int]] = []
    for run in runs:
        if run[1] < merged[0] or run[0] > merged[1]:
            kept.append(run)
        else:
            merged = [min(run[0], merged[0]), max(run[1], merged[1])]
    kept.append(merged)
    kept.sort()
    del kept[_MAX_RUNS:]
    runs[:] = kept


def apply_ranges(cursor: int, runs: list[list[int]]) -> int:
    """The cursor after the sorted runs are applied in order (as MessageDB.advance_cursors does)."""
    for after, to in runs:
        if cursor >= after:
            cursor = max(cursor, to)
    return cursor
