"""plan / run / verify / restore / list of the L1 -> L2 archive.

A run moves L1 rows older than a cutoff, in chunks, each chunk in this order:
  1. record the chunk as pending in the L1 catalog (with the ranges it will hold),
  2. upload the Parquet object, then its manifest,
  3. read the object back and check sha256, row count and the msg_ids against the selection,
  4. in ONE L1 transaction: delete the rows (keys stay) and mark the chunk archived.
A process killed anywhere leaves each message in L1 (and maybe also in a pending chunk's
object); the next run first finishes or discards pending chunks — finishing only a chunk
whose object verifies — so after it every message is exactly once in L1 ∪ L2.
Runs, verifies and restores of one database take the archive lock (one at a time).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from services.backends.messagedb import ArchiveChunk, ArchivedRange, MessageDB
from services.backends.objectstore import ObjectStore
from services.common.errors import FlareError, InvalidInput, NotFound
from services.common.ids import ConversationId
from services.common.model import Message, now_ms

from . import chunkfile
from .manifest import ConversationRange, Manifest, manifest_key, object_key

__all__ = ["ArchivePolicy", "Archiver", "ChunkMismatch", "RunReport", "VerifyResult", "Step"]

# (step, details): "chunk_pending", "chunk_uploaded", "chunk_verified", "chunk_archived",
# "chunk_resumed", "chunk_discarded". flarectl draws progress from it; crash tests stop on it.
Step = Callable[[str, dict], None]


class ChunkMismatch(FlareError):
    """An archive object does not match its manifest (or is missing)."""

    code = "archive_mismatch"


@dataclass(frozen=True, slots=True)
class ArchivePolicy:
    prefix: str = "archive/"  # key prefix in the object store
    codec: str = "zstd"
    chunk_rows: int = 10_000
    lock_timeout_s: float = 60.0

    def __post_init__(self) -> None:
        if self.codec not in chunkfile.CODECS:
            raise InvalidInput(f"unknown archive codec {self.codec!r} (known: {', '.join(chunkfile.CODECS)})")
        if not 1 <= self.chunk_rows <= 1_000_000:
            raise InvalidInput("chunk_rows must be between 1 and 1,000,000", chunk_rows=self.chunk_rows)


@dataclass(slots=True)
class RunReport:
    dry_run: bool
    before_ms: int
    chunks: list[dict] = field(default_factory=list)
    rows_archived: int = 0
    rows_left_l1: int = 0
    bytes_written: int = 0
    resumed: list[str] = field(default_factory=list)
    discarded: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class VerifyResult:
    chunk_id: str
    ok: bool
    rows: int
    problem: str = ""


def _ranges(messages: Sequence[Message]) -> list[ArchivedRange]:
    by_conversation: dict[str, list[Message]] = {}
    for m in messages:
        by_conversation.setdefault(m.conversation_id, []).append(m)
    return [ArchivedRange(ConversationId(c), min(m.seq for m in ms), max(m.seq for m in ms), len(ms),
                          min(m.created_at for m in ms), max(m.created_at for m in ms))
            for c, ms in by_conversation.items()]


class Archiver:
    def __init__(self, db: MessageDB, objects: ObjectStore, policy: ArchivePolicy = ArchivePolicy(), *,
                 on_step: Step | None = None) -> None:
        self._db = db
        self._objects = objects
        self.policy = policy
        self._on_step = on_step or (lambda step, details: None)

    # -- plan -------------------------------------------------------------------------------
    async def plan(self, *, before_ms: int, conversation_id: str | None = None) -> list[ArchivedRange]:
        return await self._db.archivable(before_ms=before_ms, conversation_id=conversation_id)

    # -- run --------------------------------------------------------------------------------
    async def run(self, *, before_ms: int, limit: int | None = None, conversation_id: str | None = None,
                  dry_run: bool = False) -> RunReport:
        report = RunReport(dry_run=dry_run, before_ms=before_ms)
        if dry_run:
            for r in await self.plan(before_ms=before_ms, conversation_id=conversation_id):
                report.rows_archived += r.row_count if limit is None else min(r.row_count, limit - report.rows_archived)
                if limit is not None and report.rows_archived >= limit:
                    break
            return report
        async with self._db.archive_lock(timeout_s=self.policy.lock_timeout_s):
            await self._resume_pending(report)
            remaining = limit
            while remaining is None or remaining > 0:
                size = self.policy.chunk_rows if remaining is None else min(self.policy.chunk_rows, remaining)
                batch = await self._db.archive_batch(before_ms=before_ms, limit=size, conversation_id=conversation_id)
                if not batch:
                    break
                await self._archive_chunk(batch, before_ms, report)
                if remaining is not None:
                    remaining -= len(batch)
        return report

    async def _archive_chunk(self, batch: list[Message], before_ms: int, report: RunReport) -> None:
        created = now_ms()
        chunk_id = f"{created:013d}-{uuid.uuid4().hex[:8]}"
        data = chunkfile.encode(batch, self.policy.codec)
        digest = hashlib.sha256(data).hexdigest()
        ranges = _ranges(batch)
        chunk = ArchiveChunk(chunk_id=chunk_id, state="pending", object_key=object_key(self.policy.prefix, chunk_id),
                             manifest_key=manifest_key(self.policy.prefix, chunk_id), row_count=len(batch),
                             codec=self.policy.codec, before_ms=before_ms, created_at_ms=created, sha256=digest,
                             ranges=tuple(ranges))
        manifest = Manifest(
            chunk_id=chunk_id, schema_version=chunkfile.SCHEMA_VERSION, codec=self.policy.codec,
            object_key=chunk.object_key, sha256=digest, object_bytes=len(data), row_count=len(batch),
            created_at_ms=created, before_ms=before_ms,
            conversations=[ConversationRange(r.conversation_id, r.min_seq, r.max_seq, r.row_count, r.min_created_ms,
                                             r.max_created_ms) for r in ranges])
        await self._db.begin_chunk(chunk)
        self._on_step("chunk_pending", {"chunk_id": chunk_id, "rows": len(batch)})
        await self._objects.put(chunk.object_key, data, content_type="application/vnd.apache.parquet")
        await self._objects.put(chunk.manifest_key, manifest.to_bytes(), content_type="application/json")
        self._on_step("chunk_uploaded", {"chunk_id": chunk_id, "bytes": len(data)})
        rows = await self.verified_rows(manifest)
        if [m.msg_id for m in rows] != [m.msg_id for m in batch]:
            raise ChunkMismatch(f"chunk {chunk_id}: read back other messages than were written", chunk_id=chunk_id)
        self._on_step("chunk_verified", {"chunk_id": chunk_id})
        left = await self._db.finish_chunk(chunk_id, msg_ids=[m.msg_id for m in batch], sha256=digest)
        self._on_step("chunk_archived", {"chunk_id": chunk_id, "rows": len(batch)})
        report.chunks.append({"chunk_id": chunk_id, "rows": len(batch), "bytes": len(data),
                              "conversations": len(ranges), "sha256": digest})
        report.rows_archived += len(batch)
        report.rows_left_l1 += left
        report.bytes_written += len(data)

    async def _resume_pending(self, report: RunReport) -> None:
        """Finish what a killed run left: a pending chunk whose object verifies is finished;
        one whose object or manifest is missing or wrong is discarded (rows are still in L1)."""
        for chunk in await self._db.archive_chunks(state="pending"):
            try:
                manifest = await self.read_manifest(chunk)
                rows = await self.verified_rows(manifest)
                if manifest.sha256 != chunk.sha256 or len(rows) != chunk.row_count:
                    raise ChunkMismatch("manifest differs from the catalog")
            except (NotFound, ChunkMismatch, InvalidInput):
                for key in (chunk.manifest_key, chunk.object_key):
                    await self._objects.delete(key)
                await self._db.forget_chunk(chunk.chunk_id)
                report.discarded.append(chunk.chunk_id)
                self._on_step("chunk_discarded", {"chunk_id": chunk.chunk_id})
                continue
            left = await self._db.finish_chunk(chunk.chunk_id, msg_ids=[m.msg_id for m in rows],
                                               sha256=manifest.sha256)
            report.resumed.append(chunk.chunk_id)
            report.rows_left_l1 += left
            self._on_step("chunk_resumed", {"chunk_id": chunk.chunk_id, "rows": len(rows)})

    # -- reading a chunk back -----------------------------------------------------------------
    async def read_manifest(self, chunk: ArchiveChunk) -> Manifest:
        manifest = Manifest.from_bytes(await self._objects.get(chunk.manifest_key))
        if manifest.chunk_id != chunk.chunk_id:
            raise ChunkMismatch(f"manifest {chunk.manifest_key} names chunk {manifest.chunk_id}")
        return manifest

    async def verified_rows(self, manifest: Manifest, *, conversation_id: str | None = None) -> list[Message]:
        """The chunk's rows after checking the object against the manifest: sha256, row count,
        and each conversation's seq range and count. Raise ChunkMismatch naming the chunk."""
        try:
            data = await self._objects.get(manifest.object_key)
        except NotFound:
            raise ChunkMismatch(f"chunk {manifest.chunk_id}: object {manifest.object_key} is missing",
                                chunk_id=manifest.chunk_id) from None
        digest = hashlib.sha256(data).hexdigest()
        if digest != manifest.sha256:
            raise ChunkMismatch(f"chunk {manifest.chunk_id}: sha256 {digest[:12]}… is not the manifest's "
                                f"{manifest.sha256[:12]}…", chunk_id=manifest.chunk_id)
        try:
            rows = chunkfile.decode(data)
        except InvalidInput as exc:
            raise ChunkMismatch(f"chunk {manifest.chunk_id}: {exc}", chunk_id=manifest.chunk_id) from exc
        if len(rows) != manifest.row_count:
            raise ChunkMismatch(f"chunk {manifest.chunk_id}: {len(rows)} rows, manifest says {manifest.row_count}",
                                chunk_id=manifest.chunk_id)
        expected = {(c.conversation_id, c.min_seq, c.max_seq, c.row_count) for c in manifest.conversations}
        found = {(r.conversation_id, r.min_seq, r.max_seq, r.row_count) for r in _ranges(rows)}
        if expected != found:
            raise ChunkMismatch(f"chunk {manifest.chunk_id}: conversations/seq ranges differ from the manifest",
                                chunk_id=manifest.chunk_id)
        if conversation_id is not None:
            rows = [r for r in rows if r.conversation_id == conversation_id]
        return rows

    # -- verify / restore / list ------------------------------------------------------------------
    async def verify(self, *, chunk_id: str | None = None) -> list[VerifyResult]:
        chunks = await self._chunks(chunk_id, states=("archived",) if chunk_id is None else None)
        results = []
        for chunk in chunks:
            try:
                manifest = await self.read_manifest(chunk)
                if manifest.sha256 != chunk.sha256:
                    raise ChunkMismatch(f"chunk {chunk.chunk_id}: manifest sha256 differs from the L1 catalog")
                rows = await self.verified_rows(manifest)
                results.append(VerifyResult(chunk.chunk_id, True, len(rows)))
            except NotFound:
                results.append(VerifyResult(chunk.chunk_id, False, 0, f"chunk {chunk.chunk_id}: manifest "
                                                                       f"{chunk.manifest_key} is missing"))
            except (ChunkMismatch, InvalidInput) as exc:
                results.append(VerifyResult(chunk.chunk_id, False, 0, str(exc)))
        return results

    async def restore(self, *, chunk_id: str | None = None, conversation_id: str | None = None,
                      since_ms: int | None = None, until_ms: int | None = None) -> dict[str, int]:
        """Put archived rows back into L1: a whole chunk, or one conversation's ranges (those
        overlapping [since, until) when given). Idempotent. Returns rows added per chunk."""
        if chunk_id is None and conversation_id is None:
            raise InvalidInput("restore needs a chunk id or a conversation")
        added: dict[str, int] = {}
        async with self._db.archive_lock(timeout_s=self.policy.lock_timeout_s):
            if chunk_id is not None:
                chunks = await self._chunks(chunk_id)
            else:
                chunks = await self._db.archive_chunks(state="archived", conversation_id=conversation_id)
            for chunk in chunks:
                wanted = [r for r in chunk.ranges
                          if (conversation_id is None or r.conversation_id == conversation_id)
                          and (since_ms is None or r.max_created_ms >= since_ms)
                          and (until_ms is None or r.min_created_ms < until_ms)]
                if not wanted:
                    continue
                rows = await self.verified_rows(await self.read_manifest(chunk))
                keep = {(r.conversation_id, r.min_seq, r.max_seq) for r in wanted}
                picked = [m for m in rows if any(c == m.conversation_id and lo <= m.seq <= hi for c, lo, hi in keep)]
                added[chunk.chunk_id] = await self._db.restore_messages(picked, chunk_id=chunk.chunk_id)
        return added

    async def list(self) -> list[ArchiveChunk]:
        return await self._db.archive_chunks()

    async def _chunks(self, chunk_id: str | None, *, states: tuple[str, ...] | None = None) -> list[ArchiveChunk]:
        chunks = await self._db.archive_chunks()
        if chunk_id is not None:
            chunks = [c for c in chunks if c.chunk_id == chunk_id]
            if not chunks:
                raise NotFound(f"no archive chunk {chunk_id}", chunk_id=chunk_id)
        if states is not None:
            chunks = [c for c in chunks if c.state in states]
        return chunks
