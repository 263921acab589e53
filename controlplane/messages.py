"""What agents and the daemon say to each other, independent of the transport (gRPC or
in-process). A push is a StoredDocument."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Hello", "Report"]


@dataclass(frozen=True, slots=True)
class Hello:
    service: str
    instance_id: str
    address: str
    kinds: tuple[str, ...]
    applied: dict[str, tuple[int, str]] = field(default_factory=dict)  # kind -> (version, digest)
    started_at: str = ""
    software_version: str = ""
    self_registered: bool = False


@dataclass(frozen=True, slots=True)
class Report:
    kind: str
    version: int
    digest: str
    ok: bool
    error: str = ""
