"""Counters and histograms one worker process keeps, and how the parent adds them up."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from .histogram import LatencyHistogram

__all__ = ["WorkerStats", "LATENCIES", "COUNTERS"]

LATENCIES = ("send_received", "send_stored", "send_delivered", "send_arrival")
COUNTERS = (
    "sent", "resent", "send_skipped", "acked_received", "acked_stored", "stored_duplicate_flag",
    "delivered_acks", "send_failed", "shed", "shed_retried", "live_messages", "sync_messages", "syncs",
    "connects", "connect_failures", "disconnects", "reconnects", "churn_events", "auth_failures",
)


@dataclass(slots=True)
class WorkerStats:
    counters: Counter = field(default_factory=Counter)
    error_frames: Counter = field(default_factory=Counter)
    close_codes: Counter = field(default_factory=Counter)
    latencies: dict[str, LatencyHistogram] = field(default_factory=lambda: {n: LatencyHistogram() for n in LATENCIES})

    def to_dict(self) -> dict:
        return {
            "counters": dict(self.counters), "error_frames": dict(self.error_frames),
            "close_codes": dict(self.close_codes),
            "latencies": {n: h.to_dict() for n, h in self.latencies.items()},
        }

    @classmethod
    def from_dict(cls, data: dict) -> WorkerStats:
        return cls(
            counters=Counter(data["counters"]), error_frames=Counter(data["error_frames"]),
            close_codes=Counter(data["close_codes"]),
            latencies={n: LatencyHistogram.from_dict(h) for n, h in data["latencies"].items()},
        )

    def merge(self, other: WorkerStats) -> WorkerStats:
        self.counters.update(other.counters)
        self.error_frames.update(other.error_frames)
        self.close_codes.update(other.close_codes)
        for name, hist in other.latencies.items():
            self.latencies.setdefault(name, LatencyHistogram()).merge(hist)
        return self
