"""`flarectl check consistency [--conversation C] [--since T]`: seq gaps and duplicates across
L1 ∪ L2, log records vs stored rows, L2 manifests vs objects, cursors past max seq,
membership vs conversations. Findings listed by kind with ids; exit 1 when there is any.
Missing seqs are also written where the control plane raises them as SEQ_GAP alerts
(`--no-report` to skip; report.py)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import typer
from rich.console import Group
from rich.text import Text

from flarectl.commands.archive._common import POLICY_OPTION, parse_time, policy_from
from flarectl.console import OutputFormat, table
from flarectl.durations import parse_duration
from flarectl.storage import CONFIG_OPTION, DATA_DIR_OPTION, OBJECTS_OPTION, URL_OPTION, load, messagedb_url, \
    run_on_stores
from flarectl.commands.check.report import report_findings
from services.archive.consistency import LogScope, check_consistency
from services.backends.registry import open_log, open_messagedb, open_objectstore
from services.common.errors import FlareError
from services.common.model import now_ms


def render(data: object) -> object:
    d: dict = data  # type: ignore[assignment]
    checked = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in d["checked"].items())
    parts: list[object] = []
    if d["findings"]:
        parts.append(table(["KIND", "CONVERSATION", "DETAIL"],
                           [[f["kind"], f["conversation_id"], f["detail"]] for f in d["findings"]]))
        parts.append(Text(", ".join(f"{n} {k}" for k, n in d["counts"].items()), style="red"))
    else:
        parts.append(Text(f"consistent: {checked}"))
    for note in d["skipped"]:
        parts.append(Text(f"skipped {note}", style="yellow"))
    return Group(*parts)


def _since(text: str | None) -> int | None:
    if text is None:
        return None
    try:  # a duration means "that long ago"
        return now_ms() - int(parse_duration(text) * 1000)
    except ValueError:
        return parse_time(text, "--since")


def consistency(
    conversation: str | None = typer.Option(None, "--conversation", help="Only this conversation."),
    since: str | None = typer.Option(None, "--since", help="Only messages created since (7d, ISO time or ms)."),
    check_log: bool = typer.Option(True, "--log/--no-log", help="Compare the log's consumed records too."),
    policy: Path | None = POLICY_OPTION,
    config: Path | None = CONFIG_OPTION,
    url: str | None = URL_OPTION,
    objects: str | None = OBJECTS_OPTION,
    log_url: str | None = typer.Option(None, "--log-url", help="Log URL (file://… or kafka://…); overrides --config."),
    data_dir: Path | None = DATA_DIR_OPTION,
    report_to_cp: bool = typer.Option(True, "--report/--no-report",
                                      help="Write missing seqs to the deployment's ConfigStore for the "
                                           "control plane's SEQ_GAP alerts."),
    output: OutputFormat = typer.Option(OutputFormat.table, "--output", "-o"),
) -> None:
    """List every inconsistency found, by kind; exit 1 if there is any, 0 if none."""
    tier = policy_from(policy, config=config, data_dir=data_dir, objects=objects)
    cfg = load(config, data_dir)
    db_url, since_ms = messagedb_url(config, url, data_dir), _since(since)

    async def work() -> dict:
        db, store = open_messagedb(db_url), open_objectstore(tier.objects_url)
        log = open_log(log_url or cfg.backend_url("log")) if check_log else None
        skipped: list[str] = []
        await db.start()
        await store.start()
        try:
            scope = None
            if log is not None:
                try:
                    await log.start()
                    scope = LogScope(log, cfg.store.topic, cfg.store.consumer_group)
                except FlareError as exc:
                    skipped.append(f"log: {exc}")
                    log = None
            report = await check_consistency(db, store, tier.policy, conversation_id=conversation,
                                             since_ms=since_ms, log=scope)
        finally:
            for backend in (log, store, db):
                if backend is not None:
                    await backend.close()
        findings = [f.to_dict() for f in report.findings]
        if report_to_cp:
            try:
                why_not = await report_findings(cfg.backend_url("configstore"), findings,
                                                conversation=conversation, since_ms=since_ms)
            except FlareError as exc:  # the check's answer stands without the alert
                why_not = f"report to the control plane: {exc}"
            if why_not:
                skipped.append(why_not)
        return {"ok": report.ok, "findings": findings,
                "counts": dict(Counter(f.kind for f in report.findings)), "checked": report.checked,
                "skipped": skipped + report.skipped}

    # work() opens the stores itself: the log is optional, and one that cannot be read is skipped.
    run_on_stores(work, output=output, human=render, failed=lambda d: not d["ok"])


