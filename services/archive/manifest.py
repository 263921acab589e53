"""The JSON manifest written beside each chunk object: what the chunk holds and how to check it.

The manifest is written after its object, so a manifest present means the object was
uploaded whole; `archive verify` re-reads the object against it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from services.common import codec
from services.common.errors import InvalidInput

__all__ = ["Manifest", "ConversationRange", "object_key", "manifest_key", "MANIFESTS"]

MANIFESTS = "manifests/"
CHUNKS = "chunks/"


def object_key(prefix: str, chunk_id: str) -> str:
    return f"{prefix}{CHUNKS}{chunk_id}.parquet"


def manifest_key(prefix: str, chunk_id: str) -> str:
    return f"{prefix}{MANIFESTS}{chunk_id}.json"


@dataclass(frozen=True, slots=True)
class ConversationRange:
    conversation_id: str
    min_seq: int
    max_seq: int
    row_count: int
    min_created_ms: int
    max_created_ms: int


@dataclass(frozen=True, slots=True)
class Manifest:
    chunk_id: str
    schema_version: int
    codec: str
    object_key: str
    sha256: str
    object_bytes: int
    row_count: int
    created_at_ms: int
    before_ms: int
    conversations: list[ConversationRange] = field(default_factory=list)

    @property
    def time_range(self) -> tuple[int, int]:
        return (min((c.min_created_ms for c in self.conversations), default=0),
                max((c.max_created_ms for c in self.conversations), default=0))

    def to_dict(self) -> dict[str, object]:
        low, high = self.time_range
        return {
            "chunk_id": self.chunk_id, "schema_version": self.schema_version, "codec": self.codec,
            "object_key": self.object_key, "sha256": self.sha256, "object_bytes": self.object_bytes,
            "row_count": self.row_count, "created_at_ms": self.created_at_ms, "before_ms": self.before_ms,
            "time_range": {"min_created_ms": low, "max_created_ms": high},
            "conversations": [
                {"conversation_id": c.conversation_id, "min_seq": c.min_seq, "max_seq": c.max_seq,
                 "row_count": c.row_count, "min_created_ms": c.min_created_ms, "max_created_ms": c.max_created_ms}
                for c in self.conversations],
        }

    def to_bytes(self) -> bytes:
        return codec.dumps(self.to_dict())

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        try:
            d = codec.loads(data)
            return cls(
                chunk_id=d["chunk_id"], schema_version=int(d["schema_version"]), codec=d["codec"],
                object_key=d["object_key"], sha256=d["sha256"], object_bytes=int(d["object_bytes"]),
                row_count=int(d["row_count"]), created_at_ms=int(d["created_at_ms"]), before_ms=int(d["before_ms"]),
                conversations=[ConversationRange(c["conversation_id"], int(c["min_seq"]), int(c["max_seq"]),
                                                 int(c["row_count"]), int(c["min_created_ms"]),
                                                 int(c["max_created_ms"])) for c in d["conversations"]],
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidInput(f"not an archive manifest: {exc}") from exc
