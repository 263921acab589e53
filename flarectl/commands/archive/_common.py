"""What every `flarectl archive` command shares: the tiering policy, opening L1 and L2, the
cutoff from --older-than, and which exit code each archive error leaves with (the frame they
run in is flarectl.storage.run_on_stores)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import typer

from flarectl.console import fail, fail_from
from flarectl.cpclient import read_manifest
from flarectl.durations import parse_duration
from flarectl.exitcodes import ExitCode
from flarectl.storage import ErrorExit, load
from services.archive import ArchivePolicy, Archiver, ChunkMismatch
from services.backends.messagedb.history import MigrationLocked, SchemaBehind
from services.backends.messagedb.migrator import Migrator
from services.backends.registry import open_messagedb, open_objectstore
from services.common.documents import load_spec
from services.common.errors import InvalidInput
from services.common.model import now_ms

__all__ = ["POLICY_OPTION", "LOCK_TIMEOUT_OPTION", "Tier", "policy_from", "before_ms", "opened", "ARCHIVE_ERRORS",
           "parse_time"]

POLICY_OPTION = typer.Option(None, "--policy", help="A tiering document {kind: tiering, spec} (default: its defaults).")
LOCK_TIMEOUT_OPTION = typer.Option(60.0, "--lock-timeout", min=0.0, help="Seconds to wait for another archive job.")


@dataclass(frozen=True, slots=True)
class Tier:
    policy: ArchivePolicy
    l1_retention_s: float
    objects_url: str
    hot_s: float = 0.0  # hot_cold_threshold: younger rows are still read often and stay in L1


def policy_from(policy_file: Path | None, *, config: Path | None, data_dir: Path | None, objects: str | None,
                chunk_rows: int | None = None, lock_timeout_s: float = 60.0) -> Tier:
    spec: dict = {}
    if policy_file is not None:
        manifest = read_manifest(str(policy_file))
        if manifest.get("kind") != "tiering":
            fail(f"{policy_file}: kind is {manifest.get('kind')!r}, not 'tiering'", ExitCode.INVALID)
        spec = manifest.get("spec") or {}
    try:
        tiering = load_spec("tiering", spec)
    except InvalidInput as exc:
        fail_from(exc)
    # objectstore://PREFIX: the deployment's object store, under PREFIX; any other URL is a store of its own.
    scheme, _, rest = tiering.l2_target.partition("://")
    if scheme == "objectstore":
        prefix, store = rest, objects or load(config, data_dir).backend_url("objectstore")
    else:
        prefix, store = "archive/", objects or tiering.l2_target
    prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
    try:
        policy = ArchivePolicy(prefix=prefix, codec=tiering.compression, chunk_rows=chunk_rows or 10_000,
                               lock_timeout_s=lock_timeout_s)
    except InvalidInput as exc:
        fail_from(exc)
    return Tier(policy, float(tiering.l1_retention), store, float(tiering.hot_cold_threshold))


def before_ms(older_than: str | None, tier: Tier) -> int:
    try:
        seconds = parse_duration(older_than) if older_than else tier.l1_retention_s
    except ValueError as exc:
        fail(str(exc), ExitCode.USAGE)
    if seconds < tier.hot_s:
        fail(f"--older-than {older_than} would archive hot data: the tiering policy's hot_cold_threshold is "
             f"{tier.hot_s:g}s", ExitCode.INVALID, hint="archive older data, or lower hot_cold_threshold in --policy")
    return now_ms() - int(seconds * 1000)


def parse_time(text: str | None, option: str) -> int | None:
    """--since/--until: an ISO 8601 time (UTC unless it says otherwise) or epoch milliseconds."""
    if text is None:
        return None
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        fail(f"{option}: not an ISO 8601 time or epoch ms: {text!r}", ExitCode.USAGE)
    if moment.tzinfo is None:
        from datetime import UTC

        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


@asynccontextmanager
async def opened(db_url: str, tier: Tier, *, on_step=None) -> AsyncIterator[tuple[object, object, Archiver]]:
    db, objects = open_messagedb(db_url), open_objectstore(tier.objects_url)
    await db.start()
    try:
        await Migrator(db).require_current()  # type: ignore[arg-type]
        await objects.start()
        try:
            yield db, objects, Archiver(db, objects, tier.policy, on_step=on_step)  # type: ignore[arg-type]
        finally:
            await objects.close()
    finally:
        await db.close()


ARCHIVE_ERRORS = (
    # ArchiveLocked is a MigrationLocked: the archive job holds the same kind of lock.
    ErrorExit(MigrationLocked, ExitCode.LOCKED, hint="raise --lock-timeout, or wait for the other archive job"),
    ErrorExit(SchemaBehind, ExitCode.FAILURE),
    ErrorExit(ChunkMismatch, ExitCode.FAILURE, hint="`flarectl archive verify --all` lists every damaged chunk"),
)
