"""`flarectl replay --since T --until T --into store [--dry-run] [--resume ID]`.

Re-applies the records of a time window of the log to a target (ARCHITECTURE §11). It opens
the deployment's log and MessageDB itself (from --config / --data-dir), reads with a
consumer group of its own, and writes a checkpoint under `<data_dir>/replay/`.
"""

from __future__ import annotations

import asyncio
import enum
import sys
from pathlib import Path

import typer
from rich.console import Group
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from flarectl.console import OutputFormat, emit, err, fail, fail_from, table
from flarectl.exitcodes import ExitCode
from services.backends.registry import open_log, open_messagedb
from services.common.config import FlareConfig, load_config
from services.common.errors import FlareError, InvalidInput
from services.replay import (
    CheckpointStore, ReplayReader, Tally, Window, make_plan, new_run_id, run_replay,
)


class Topic(str, enum.Enum):
    messages = "messages"
    offline = "offline"


class Target(str, enum.Enum):
    store = "store"
    search = "search"
    notification = "notification"


# Targets named by the issue whose services Flare does not have yet: refused, never faked.
_MISSING_SERVICES = {
    Target.search: "the search service does not exist in Flare yet, so there is nothing to replay into",
    Target.notification: "the notification service does not exist in Flare yet (the offline topic has "
                         "no consumer), so there is nothing to replay into",
}


def _human(data: object) -> object:
    result: dict = data  # type: ignore[assignment]
    plan = result["plan"]
    rows = [[p["partition"], p["start"], p["end"], p["records"], "-" if p["live_committed"] is None
             else p["live_committed"], p["stop"], p["left_to_live"]] for p in plan["partitions"]]
    parts: list[object] = [
        f"replay {result['run_id']} of {plan['topic']} [{plan['window']['since']}, {plan['window']['until']}) "
        f"into {plan['target']}" + (" (dry run: nothing written)" if result["dry_run"] else ""),
        table(["PARTITION", "START", "END", "RECORDS", "LIVE COMMITTED", "REPLAY STOP", "LEFT TO LIVE"], rows),
    ]
    s = result["summary"]
    verb = "would apply" if result["dry_run"] else "applied"
    parts.append(f"scanned {s['scanned']}, {verb} {s['applied']} (restored {s['restored']} with their seq, "
                 f"appended {s['appended']} by the live owner), skipped {s['skipped']} already stored, "
                 f"{s['duplicates']} duplicates, errors {s['errors']}")
    if result["awaiting_owner"]:
        parts.append("the live owner has not yet committed what replay handed it (partition@offset): "
                     + ", ".join(f"{p}@{o}" for p, o in result["awaiting_owner"].items()))
    return Group(*parts)


def replay(
    since: str | None = typer.Option(None, "--since", help="Window start, ISO 8601 with Z or an offset (inclusive)."),
    until: str | None = typer.Option(None, "--until", help="Window end, ISO 8601 with Z or an offset (exclusive)."),
    topic: Topic = typer.Option(Topic.messages, "--topic", help="Which log topic to read."),
    conversation: str | None = typer.Option(None, "--conversation", help="Only this conversation's records."),
    into: Target = typer.Option(..., "--into", help="Where the records go: store (search, notification: not yet)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Plan and classify; write nothing."),
    resume: str | None = typer.Option(None, "--resume", help="Continue the run with this id from its checkpoint."),
    owner_timeout: float = typer.Option(60.0, "--owner-timeout",
                                        help="Seconds to wait for the live owner to persist handed-back records."),
    config: Path | None = typer.Option(None, "--config", "-c", help="The deployment's config file."),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Embedded data dir [default: ./.flare]."),
    output: OutputFormat = typer.Option(OutputFormat.table, "--output", "-o"),
) -> None:
    """Re-apply [since, until) of the log to a target; idempotent (replaying twice changes nothing)."""
    if into in _MISSING_SERVICES:
        fail(f"--into {into.value}: {_MISSING_SERVICES[into]}", ExitCode.NOT_FOUND,
             hint="--into store is the target that exists")
    if topic is Topic.offline:
        fail("--into store reads the messages topic; the offline topic feeds notifications", ExitCode.INVALID)
    try:
        cfg = load_config(config, data_dir=data_dir)
    except (OSError, ValueError) as exc:
        fail(f"cannot load config: {exc}", ExitCode.INVALID)
    try:
        window = Window.parse(since, until) if since is not None and until is not None else None
        if resume is None and window is None:
            raise InvalidInput("--since and --until are both needed (or --resume RUN)", field="since")
        result = asyncio.run(_run(cfg, window=window, conversation=conversation, resume=resume, dry_run=dry_run,
                                  owner_timeout=owner_timeout, progress=output is OutputFormat.table))
    except FlareError as exc:
        in_use = "in use by another FileLog" in str(exc)
        fail_from(exc, hint="the embedded log is held by `flarectl up`: stop it, replay, start it again" if in_use
                  else None)
    emit(result, output, human=_human)
    if result["summary"]["errors"]:
        raise typer.Exit(int(ExitCode.FAILURE))


async def _run(cfg: FlareConfig, *, window: Window | None, conversation: str | None, resume: str | None,
               dry_run: bool, owner_timeout: float, progress: bool) -> dict:
    checkpoints = CheckpointStore(Path(cfg.data_dir) / "replay")
    tally: Tally | None = None
    if resume is not None:
        plan, tally, status = checkpoints.load(resume)
        if window is not None and window != plan.window:
            raise InvalidInput(f"run {resume} replays {plan.window.to_dict()['since']}..; drop --since/--until "
                               "or give the same ones", field="since")
    log = open_log(cfg.backend_url("log"))
    db = open_messagedb(cfg.backend_url("messagedb"))
    await log.start()
    try:
        await db.start()
        try:
            run_id = resume or new_run_id()
            async with ReplayReader(log, cfg.store.topic, run_id) as reader:
                if resume is None:
                    assert window is not None
                    plan = await make_plan(reader, log, run_id=run_id, topic=cfg.store.topic, target="store",
                                           window=window, live_group=cfg.store.consumer_group,
                                           conversation=conversation)
                    if not dry_run:
                        checkpoints.save(plan, Tally(), status="planned")
                with _progress(progress and sys.stderr.isatty()) as on_progress:
                    result = await run_replay(plan, reader=reader, log=log, db=db, dry_run=dry_run,
                                              checkpoints=checkpoints, tally=tally, on_progress=on_progress,
                                              owner_timeout_s=owner_timeout)
            return result.to_dict()
        finally:
            await db.close()
    finally:
        await log.close()


class _progress:
    """records/s and ETA on stderr when it is a terminal; nothing otherwise."""

    def __init__(self, enabled: bool) -> None:
        self._bar = Progress(TextColumn("replay"), BarColumn(), TextColumn("{task.completed}/{task.total} records"),
                             TextColumn("{task.fields[rate]} rec/s"), TimeRemainingColumn(), console=err,
                             transient=True) if enabled else None
        self._task = None

    def __enter__(self):
        if self._bar is None:
            return None
        self._bar.start()
        self._task = self._bar.add_task("replay", total=None, rate="-")
        return self._update

    def _update(self, done: int, total: int) -> None:
        assert self._bar is not None and self._task is not None
        elapsed = self._bar.tasks[0].elapsed or 0.0
        self._bar.update(self._task, completed=done, total=total, rate=f"{done / elapsed:.0f}" if elapsed else "-")

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


COMMANDS = {"replay": replay}
