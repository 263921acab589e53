"""The replay plan: per partition, the offsets fixed once, before a record is read.

For each partition of the topic:
  start  the first offset whose timestamp >= since (kcat#399 returned the partition's first
         record for `-o s@ts`; the Log port's seek_to_timestamp is "first >= t", and a time
         after the last record gives the end offset, which is not an error: nothing to read)
  end    the first offset whose timestamp >= until (half-open: a record at until is out)
  stop   min(end, the live group's committed offset): records the partition's live owner has
         not committed yet are its business, not replay's (ARCHITECTURE §11)
Records in [start, stop) whose own timestamp is outside the window (producers may pass
out-of-order timestamps) are read as context only. A resumed run keeps the plan it was
made with; only `resume_from` moves.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from services.common.errors import InvalidInput

from .window import Window

__all__ = ["PartitionPlan", "ReplayPlan"]


@dataclass(slots=True)
class PartitionPlan:
    partition: int
    beginning: int  # the log's first offset when planned
    start: int
    end: int
    live_committed: int | None  # the live group's committed offset; None: nothing committed
    resume_from: int | None = None  # set by the checkpoint: every record below is decided
    # window records at or above resume_from already decided (a later run's restore makes
    # them look stored; the resumed run keeps what the first one did)
    decided: dict[int, str] = field(default_factory=dict)

    @property
    def stop(self) -> int:
        committed = self.beginning if self.live_committed is None else self.live_committed
        return max(self.start, min(self.end, committed))

    @property
    def records(self) -> int:
        return self.end - self.start

    @property
    def left_to_live(self) -> int:
        return self.end - self.stop

    @property
    def first_unread(self) -> int:
        return self.start if self.resume_from is None else max(self.start, self.resume_from)

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "decided": {str(o): k for o, k in self.decided.items()}, "stop": self.stop, "records": self.records, "left_to_live": self.left_to_live}

    @classmethod
    def from_dict(cls, data: dict) -> PartitionPlan:
        return cls(partition=int(data["partition"]), beginning=int(data["beginning"]), start=int(data["start"]),
                   end=int(data["end"]),
                   live_committed=None if data.get("live_committed") is None else int(data["live_committed"]),
                   resume_from=None if data.get("resume_from") is None else int(data["resume_from"]),
                   decided={int(o): str(k) for o, k in (data.get("decided") or {}).items()})


@dataclass(slots=True)
class ReplayPlan:
    run_id: str
    topic: str
    target: str
    window: Window
    live_group: str
    conversation: str | None
    created_at_ms: int
    partitions: list[PartitionPlan] = field(default_factory=list)

    @property
    def records(self) -> int:
        return sum(p.records for p in self.partitions)

    @property
    def to_read(self) -> int:
        return sum(max(0, p.stop - p.first_unread) for p in self.partitions)

    def to_dict(self) -> dict[str, object]:
        return {
            "run_id": self.run_id, "topic": self.topic, "target": self.target, "window": self.window.to_dict(),
            "live_group": self.live_group, "conversation": self.conversation, "created_at_ms": self.created_at_ms,
            "records": self.records, "left_to_live": sum(p.left_to_live for p in self.partitions),
            "partitions": [p.to_dict() for p in self.partitions],
        }

    @classmethod
    def from_dict(cls, data: dict) -> ReplayPlan:
        try:
            window = data["window"]
            return cls(run_id=str(data["run_id"]), topic=str(data["topic"]), target=str(data["target"]),
                       window=Window(int(window["since_ms"]), int(window["until_ms"])),
                       live_group=str(data["live_group"]), conversation=data.get("conversation"),
                       created_at_ms=int(data["created_at_ms"]),
                       partitions=[PartitionPlan.from_dict(p) for p in data["partitions"]])
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(f"the replay checkpoint is damaged: {exc}") from exc
