"""Replay: re-apply a time range of the log to a target (ARCHITECTURE §11).

window (bounds) -> plan (per-partition offsets, fixed once) -> reader (its own consumer) ->
target (store: restore in place or hand back to the live owner) -> checkpoint + summary.
"""

from __future__ import annotations

from .checkpoint import CheckpointStore
from .plan import PartitionPlan, ReplayPlan
from .reader import ReplayReader, replay_group
from .runner import ReplayResult, make_plan, new_run_id, run_replay
from .store_target import StoreTarget, Tally
from .window import Window, format_utc_ms, parse_utc_ms

__all__ = [
    "CheckpointStore", "PartitionPlan", "ReplayPlan", "ReplayReader", "ReplayResult", "StoreTarget", "Tally",
    "Window", "format_utc_ms", "make_plan", "new_run_id", "parse_utc_ms", "replay_group", "run_replay",
]
