"""Message history over L1 and L2, for sync: a device asking for seqs older than L1 holds
gets them from the archive chunks whose ranges cover them, in seq order, as if never moved.

Only conversations with archived ranges past the device's cursor touch L2 (one indexed
catalog lookup otherwise). Decoded chunks are kept in a small LRU; each object is checked
against the catalog's sha256 before use.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

from services.backends.messagedb import MessageDB
from services.backends.objectstore import ObjectStore
from services.common.model import Message

from . import chunkfile
from .archiver import ChunkMismatch

__all__ = ["TieredHistory"]


class TieredHistory:
    def __init__(self, db: MessageDB, objects: ObjectStore, *, cached_chunks: int = 8) -> None:
        self._db = db
        self._objects = objects
        self._cache: OrderedDict[str, list[Message]] = OrderedDict()
        self._cached_chunks = cached_chunks
        self._keys: dict[str, tuple[str, str]] = {}

    async def messages_after(self, conversation_id: str, after_seq: int, *, limit: int = 200) -> list[Message]:
        ranges = await self._db.archived_ranges(conversation_id, after_seq=after_seq)
        recent = await self._db.messages_after(conversation_id, after_seq, limit=limit)
        if not ranges:
            return recent
        by_seq: dict[int, Message] = {}
        for r in ranges:
            if r.min_seq > after_seq + limit and len(by_seq) >= limit:
                break
            for m in await self._chunk_rows(r.chunk_id):
                if m.conversation_id == conversation_id and m.seq > after_seq and r.min_seq <= m.seq <= r.max_seq:
                    by_seq.setdefault(m.seq, m)
        for m in recent:
            by_seq.setdefault(m.seq, m)
        return [by_seq[s] for s in sorted(by_seq)[:limit]]

    async def _chunk_rows(self, chunk_id: str) -> list[Message]:
        if chunk_id in self._cache:
            self._cache.move_to_end(chunk_id)
            return self._cache[chunk_id]
        if chunk_id not in self._keys:
            for chunk in await self._db.archive_chunks(state="archived"):
                self._keys[chunk.chunk_id] = (chunk.object_key, chunk.sha256)
        object_key, sha256 = self._keys[chunk_id]
        data = await self._objects.get(object_key)
        if hashlib.sha256(data).hexdigest() != sha256:
            raise ChunkMismatch(f"chunk {chunk_id}: object {object_key} does not match its checksum; "
                                "run `flarectl archive verify`", chunk_id=chunk_id)
        rows = chunkfile.decode(data)
        self._cache[chunk_id] = rows
        while len(self._cache) > self._cached_chunks:
            self._cache.popitem(last=False)
        return rows
