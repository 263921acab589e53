"""Desired state: the version of each kind being served, how it changes, and its history.

Writes (apply, rollback) validate, then compare-and-swap `config/<kind>` on the key's
mod_revision, then record `config-history/<kind>/<version>`. Versions only go up: a
rollback publishes the old spec as a new version, so an agent never sees a version go back.

Everything that lands in `config/<kind>` — our own writes and anyone's etcdctl put — comes
through `observe()`: a valid document becomes the served version; an invalid one is refused
and reported under `config-rejected/<kind>`, and the last valid version keeps being served.
"""

from __future__ import annotations

import asyncio
import difflib
from collections.abc import Callable
from dataclasses import dataclass, replace

import yaml

from services.backends.configstore import ConfigStore
from services.common import codec
from services.common.errors import Conflict, InvalidInput, NotFound

from . import keys
from services.common.documents import (
    KINDS, StoredDocument, check_document_size, decode_stored, now_iso, spec_digest, validate_spec,
)

__all__ = ["ApplyResult", "DesiredState", "HISTORY_LIMIT"]

HISTORY_LIMIT = 100  # versions kept per kind; older ones are pruned on write


@dataclass(frozen=True, slots=True)
class ApplyResult:
    kind: str
    version: int
    previous_version: int
    changed: bool
    dry_run: bool
    diff: str


_DIFF_LINES = 2_000  # past this a line diff is unreadable and slow (yaml: 8 s for 100k words)
_DIFF_SAMPLES = 20
# libyaml's emitter when present: PyYAML's pure-Python one takes seconds on a 10,000-word
# document (bench/controlplane_propagation.py --filter-words).
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _yaml_lines(spec: dict) -> list[str]:
    return yaml.dump(spec, Dumper=_DUMPER, sort_keys=True, allow_unicode=True).splitlines(keepends=True)


def render_diff(kind: str, old: StoredDocument | None, new_spec: dict) -> str:
    label = f"{kind} v{old.version}" if old else f"{kind} (none)"
    if _size(old.spec if old else {}) + _size(new_spec) > _DIFF_LINES:
        return _summary_diff(label, kind, old.spec if old else {}, new_spec)
    before = _yaml_lines(old.spec) if old else []
    after = _yaml_lines(new_spec)
    return "".join(difflib.unified_diff(before, after, fromfile=label, tofile=f"{kind} (new)"))


def _size(spec: dict) -> int:
    return sum(len(v) if isinstance(v, (list, dict)) else 1 for v in spec.values())


def _summary_diff(label: str, kind: str, before: dict, after: dict) -> str:
    """Per top-level field: lists as added/removed counts with a few samples; the rest as
    old -> new. What an operator can read for a 100k-word list, in milliseconds."""
    lines = [f"--- {label}\n", f"+++ {kind} (new)\n"]
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        if isinstance(old, list) or isinstance(new, list):
            old_items = {codec.dumps(item): item for item in old or []}
            new_items = {codec.dumps(item): item for item in new or []}
            added = [new_items[k] for k in new_items if k not in old_items]
            removed = [old_items[k] for k in old_items if k not in new_items]
            lines.append(f"@@ {key}: +{len(added)} -{len(removed)} of {len(new or [])} items @@\n")
            lines += [f"-  {codec.dumps_str(item)}\n" for item in removed[:_DIFF_SAMPLES]]
            lines += [f"+  {codec.dumps_str(item)}\n" for item in added[:_DIFF_SAMPLES]]
            if len(added) + len(removed) > 2 * _DIFF_SAMPLES:
                lines.append(f"   … {len(added) + len(removed) - 2 * _DIFF_SAMPLES} more changes not shown\n")
        else:
            lines.append(f"@@ {key} @@\n")
            if key in before:
                lines.append(f"-{key}: {codec.dumps_str(old)}\n")
            if key in after:
                lines.append(f"+{key}: {codec.dumps_str(new)}\n")
    return "".join(lines)


def _validated(kind: str, spec: object) -> tuple[dict, str]:
    normalized = validate_spec(kind, spec)
    return normalized, spec_digest(normalized)


class DesiredState:
    def __init__(self, store: ConfigStore, *, on_change: Callable[[StoredDocument], None]) -> None:
        self._store = store
        self._on_change = on_change
        self.served: dict[str, StoredDocument] = {}
        self._seen_revision: dict[str, int] = {}
        self._rejected: set[str] = set()
        self._lock = asyncio.Lock()  # one writer at a time inside this daemon

    # -- reading the store ------------------------------------------------------------------

    async def load(self) -> int:
        """(Re)list config/ and serve what is valid; return the revision listed at."""
        rejected, _ = await self._store.get_prefix(keys.REJECTED)
        self._rejected = {kv.key.removeprefix(keys.REJECTED) for kv in rejected}
        kvs, revision = await self._store.get_prefix(keys.CONFIG)
        for kv in kvs:
            await self.observe(kv.key.removeprefix(keys.CONFIG), kv.value, kv.mod_revision)
        return revision

    async def observe(self, kind: str, value: bytes | None, mod_revision: int) -> None:
        """Handle one state of config/<kind> (None: the key was deleted)."""
        async with self._lock:
            if mod_revision <= self._seen_revision.get(kind, 0):
                return  # already handled (our own write, or a re-list of an old state)
            self._seen_revision[kind] = mod_revision
            if kind not in KINDS:
                await self._reject(kind, mod_revision, f"kind: unknown kind {kind!r}")
                return
            if value is None:
                await self._reject(kind, mod_revision, "config key was deleted outside the control plane")
                return
            try:
                doc = decode_stored(kind, value)
            except InvalidInput as exc:
                await self._reject(kind, mod_revision, exc.message)
                return
            served = self.served.get(kind)
            if served is not None and doc.version == served.version and doc.digest == served.digest:
                await self._clear_rejection(kind)
                return
            if doc.version == 0 or (served is not None and doc.version <= served.version):
                # A direct write without a fresh version: adopt it as the next version. The
                # rewrite comes back through the watch and is served then.
                adopted = replace(doc, version=await self._next_version(kind), updated_at=now_iso(),
                                  updated_by=doc.updated_by or "direct-write")
                try:
                    await self._store.compare_and_swap(keys.config_key(kind), adopted.to_json(),
                                                       expected_mod_revision=mod_revision)
                except Conflict:
                    pass  # written again meanwhile; that event follows
                return
            await self._publish(doc)

    async def _publish(self, doc: StoredDocument, encoded: bytes | None = None) -> None:
        await self._store.put(keys.history_key(doc.kind, doc.version), encoded or doc.to_json())
        self.served[doc.kind] = doc
        await self._clear_rejection(doc.kind)
        self._on_change(doc)

    async def _reject(self, kind: str, mod_revision: int, error: str) -> None:
        if kind in KINDS and kind not in self.served:
            # Nothing served yet (a fresh daemon found a bad value): serve the newest history.
            history = await self.history(kind, limit=1)
            if history:
                self.served[kind] = history[0]
                self._on_change(history[0])
        serving = self.served.get(kind)
        record = {"kind": kind, "mod_revision": mod_revision, "error": error, "at": now_iso(),
                  "serving_version": serving.version if serving else 0}
        await self._store.put(keys.rejected_key(kind), codec.dumps(record))
        self._rejected.add(kind)

    async def _clear_rejection(self, kind: str) -> None:
        if kind in self._rejected:
            await self._store.delete(keys.rejected_key(kind))
            self._rejected.discard(kind)

    async def _next_version(self, kind: str) -> int:
        served = self.served.get(kind)
        # The newest history key names its version: no need to decode (and re-validate) it.
        kvs, _ = await self._store.get_prefix(keys.history_prefix(kind))
        newest = max((int(kv.key.rsplit("/", 1)[1]) for kv in kvs if kv.key.rsplit("/", 1)[1].isdigit()), default=0)
        return max(served.version if served else 0, newest) + 1

    # -- writes -----------------------------------------------------------------------------

    async def apply(self, kind: str, spec: object, *, expect_version: int | None = None, actor: str = "",
                    comment: str = "", dry_run: bool = False) -> ApplyResult:
        # Validation, digest and diff are CPU work proportional to the document (seconds for
        # a 100k-word filter list): a worker thread keeps the event loop — in the monolith,
        # every client's — running beside it.
        spec, digest = await asyncio.to_thread(_validated, kind, spec)
        async with self._lock:
            served = self.served.get(kind)
            current = served.version if served else 0
            if expect_version is not None and expect_version != current:
                raise Conflict(f"{kind} is at version {current}, not {expect_version}", kind=kind, version=current)
            if served is not None and served.digest == digest:
                return ApplyResult(kind, current, current, changed=False, dry_run=dry_run, diff="")
            version = await self._next_version(kind)
            if dry_run:
                return ApplyResult(kind, version, current, changed=True, dry_run=True,
                                   diff=await asyncio.to_thread(render_diff, kind, served, spec))
            # A real apply answers without the diff (`config diff` / --dry-run show it): rendering
            # it costs more than the apply itself on a 10,000-word document (bench/controlplane_propagation.py).
            diff = ""
            doc = StoredDocument(kind=kind, version=version, spec=spec, digest=digest,
                                 updated_at=now_iso(), updated_by=actor, comment=comment)
            existing = await self._store.get(keys.config_key(kind))
            encoded = await asyncio.to_thread(doc.to_json)
            check_document_size(kind, len(encoded))
            try:
                revision = await self._store.compare_and_swap(
                    keys.config_key(kind), encoded,
                    expected_mod_revision=existing.mod_revision if existing else 0)
            except Conflict as exc:
                raise Conflict(f"{kind} changed while applying; retry", kind=kind) from exc
            self._seen_revision[kind] = revision
            await self._publish(doc, encoded)
            await self._prune(kind)
            return ApplyResult(kind, version, current, changed=True, dry_run=False, diff=diff)

    async def rollback(self, kind: str, to_version: int, *, actor: str = "", dry_run: bool = False) -> ApplyResult:
        if kind not in KINDS:
            raise InvalidInput(f"kind: unknown kind {kind!r}", field="kind")
        kv = await self._store.get(keys.history_key(kind, to_version))
        if kv is None:
            raise NotFound(f"{kind} has no version {to_version} in its history", kind=kind, version=to_version)
        old = decode_stored(kind, kv.value)
        return await self.apply(kind, old.spec, actor=actor, comment=f"rollback to v{to_version}", dry_run=dry_run)

    async def _prune(self, kind: str) -> None:
        kvs, _ = await self._store.get_prefix(keys.history_prefix(kind))
        for kv in kvs[:-HISTORY_LIMIT]:
            await self._store.delete(kv.key)

    # -- reads ------------------------------------------------------------------------------

    def get(self, kind: str) -> StoredDocument:
        if kind not in KINDS:
            raise InvalidInput(f"kind: unknown kind {kind!r} (known: {', '.join(KINDS)})", field="kind")
        doc = self.served.get(kind)
        if doc is None:
            raise NotFound(f"no {kind} document has been applied yet", kind=kind)
        return doc

    async def history(self, kind: str, *, limit: int = 0) -> list[StoredDocument]:
        """Newest first."""
        kvs, _ = await self._store.get_prefix(keys.history_prefix(kind))
        out: list[StoredDocument] = []
        for kv in reversed(kvs):
            try:
                out.append(decode_stored(kind, kv.value))
            except InvalidInput:
                continue  # a damaged history entry is skipped, not fatal
            if limit and len(out) >= limit:
                break
        return out

    async def rejections(self) -> list[dict]:
        kvs, _ = await self._store.get_prefix(keys.REJECTED)
        return [codec.loads(kv.value) for kv in kvs]  # type: ignore[misc]
