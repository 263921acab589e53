"""`flarectl config apply -f FILE [--dry-run] [--expect-version N] [--wait [--timeout 30s]
[--rollback-on-nack]]`.

With `--wait` the command follows the control plane's aggregated picture (`Watch`) until
every instance that consumes the kind and holds a stream has answered the new version:
exit 0 when all ACKed, 1 when any NACKed (each reason printed), TIMEOUT when some never
answered (they are listed). `--rollback-on-nack` re-applies the previous version's document
(from the history; an operator may, no admin needed) and waits for that too.
"""

from __future__ import annotations

import asyncio

import typer

from controlplane.aggregate import apply_changes
from controlplane.client import AdminClient
from flarectl.console import OutputFormat, emit, err
from flarectl.cpclient import CONTEXT_OPTION, call_controlplane, read_manifest
from flarectl.durations import parse_duration
from flarectl.exitcodes import ExitCode
from services.common.errors import InvalidInput

__all__ = ["apply", "wait_for_answers"]


def _human(data: object) -> str:
    r: dict = data  # type: ignore[assignment]
    if not r["changed"]:
        line = f"{r['kind']} unchanged (v{r['version']})"
    elif r["dry_run"]:
        return f"{r['kind']} would become v{r['version']} (dry run; now v{r['previous_version']})\n{r['diff']}".rstrip()
    else:
        line = f"{r['kind']} v{r['version']} applied (was v{r['previous_version']})"
    wait = r.get("wait")
    if wait is None:
        return line
    lines = [line, _outcome_line(r["kind"], r["version"], wait)]
    rollback = r.get("rollback")
    if rollback is not None:
        lines.append(f"rolled back: {r['kind']} v{rollback['version']} restores v{rollback['restores']}")
        lines.append(_outcome_line(r["kind"], rollback["version"], rollback["wait"]))
    return "\n".join(lines)


def _outcome_line(kind: str, version: int, wait: dict) -> str:
    answers = wait["instances"]
    acked = sum(1 for a in answers if a["answer"] == "ACK")
    nacked = [a for a in answers if a["answer"] == "NACK"]
    pending = [a for a in answers if a["answer"] == "PENDING"]
    if not answers:
        return f"no running instance consumes {kind}; nothing to wait for"
    text = f"{kind} v{version}: {acked}/{len(answers)} ACKed"
    if nacked:
        text += f", {len(nacked)} NACKed"
    if pending:
        text += f", {len(pending)} did not answer within {wait['timeout_s']:g}s: " + ", ".join(a["instance"] for a in pending)
    return text


def _answers(picture: dict, kind: str, version: int) -> dict[str, dict]:
    """Per subscribed instance (streaming, consumes `kind`): ACK, NACK (with the reason) or PENDING."""
    answers: dict[str, dict] = {}
    for row in picture["rows"].values():
        if not row.get("streaming"):
            continue  # down: it gets the version when it comes back; nothing to wait for
        for entry in row["kinds"]:
            if entry["kind"] != kind:
                continue
            if entry["state"] == "SYNCED" and entry["applied_version"] == version:
                answers[row["id"]] = {"instance": row["id"], "answer": "ACK", "error": ""}
            elif entry["state"] == "NACKED" and entry["desired_version"] == version:
                answers[row["id"]] = {"instance": row["id"], "answer": "NACK", "error": entry["error"]}
            else:
                answers[row["id"]] = {"instance": row["id"], "answer": "PENDING", "error": ""}
    return answers


async def wait_for_answers(client: AdminClient, kind: str, version: int, *, timeout_s: float,
                           progress: bool = True) -> dict:
    """Follow the picture until every subscribed instance answered `version`, or the timeout."""
    picture = None
    told: set[str] = set()
    answers: dict[str, dict] = {}
    stream = client.watch()
    try:
        async with asyncio.timeout(timeout_s):
            async for update in stream:
                picture = apply_changes(picture, update)
                answers = _answers(picture, kind, version)
                for key, answer in sorted(answers.items()):
                    if answer["answer"] != "PENDING" and key not in told:
                        told.add(key)
                        if progress:
                            reason = f": {answer['error']}" if answer["error"] else ""
                            err.print(f"  {answer['answer']} {key} {kind} v{version}{reason}", highlight=False)
                if all(a["answer"] != "PENDING" for a in answers.values()):
                    break
    except TimeoutError:
        pass
    finally:
        await stream.aclose()
    return {"timeout_s": timeout_s, "instances": sorted(answers.values(), key=lambda a: a["instance"])}


async def _apply_and_wait(client: AdminClient, manifest: dict, *, expect_version: int | None, comment: str,
                          timeout_s: float, rollback_on_nack: bool) -> dict:
    result = await client.apply(manifest, expect_version=expect_version, comment=comment)
    kind, version = result["kind"], result["version"]
    result["wait"] = await wait_for_answers(client, kind, version, timeout_s=timeout_s)
    nacked = any(a["answer"] == "NACK" for a in result["wait"]["instances"])
    if nacked and rollback_on_nack and result["changed"] and result["previous_version"] > 0:
        previous = result["previous_version"]
        history = await client.history(kind)
        old = next((d for d in history if d["version"] == previous), None)
        if old is None:
            raise InvalidInput(f"v{previous} of {kind} is no longer in the history; cannot roll back")
        err.print(f"  rolling back {kind} to v{previous}", highlight=False)
        back = await client.apply({"kind": kind, "spec": old["spec"]},
                                  comment=f"rollback to v{previous} after a NACK of v{version}")
        result["rollback"] = {"version": back["version"], "restores": previous,
                              "wait": await wait_for_answers(client, kind, back["version"], timeout_s=timeout_s)}
    return result


def _exit_code(result: dict) -> ExitCode:
    waits = [result["wait"]] + ([result["rollback"]["wait"]] if "rollback" in result else [])
    if any(a["answer"] == "NACK" for a in result["wait"]["instances"]):
        return ExitCode.FAILURE
    if any(a["answer"] == "PENDING" for w in waits for a in w["instances"]):
        return ExitCode.TIMEOUT
    return ExitCode.OK


def apply(
    file: str = typer.Option(..., "--file", "-f", help="Document file {kind, spec} (YAML or JSON; - for stdin)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate and show the diff; change nothing."),
    expect_version: int | None = typer.Option(None, "--expect-version",
                                              help="Apply only if the current version is N (0: none yet)."),
    comment: str = typer.Option("", "--comment", "-m", help="Recorded in the history."),
    wait: bool = typer.Option(False, "--wait", help="Wait until every subscribed instance ACKs or NACKs."),
    timeout: str = typer.Option("30s", "--timeout", help="With --wait: how long to wait (30s, 2m)."),
    rollback_on_nack: bool = typer.Option(False, "--rollback-on-nack",
                                          help="With --wait: on a NACK restore the previous version and wait for it."),
    output: OutputFormat = typer.Option(OutputFormat.table, "--output", "-o"),
    context: str | None = CONTEXT_OPTION,
) -> None:
    """Validate a document and make it the new version; instances get it pushed."""
    manifest = read_manifest(file)
    if rollback_on_nack and not wait:
        raise typer.BadParameter("--rollback-on-nack needs --wait", param_hint="--rollback-on-nack")
    if not wait or dry_run:
        result = call_controlplane(
            lambda c: c.apply(manifest, expect_version=expect_version, dry_run=dry_run, comment=comment),
            context=context)
        emit(result, output, human=_human)
        return
    try:
        timeout_s = parse_duration(timeout)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--timeout") from exc
    result = call_controlplane(
        lambda c: _apply_and_wait(c, manifest, expect_version=expect_version, comment=comment,
                                  timeout_s=timeout_s, rollback_on_nack=rollback_on_nack), context=context)
    emit(result, output, human=_human)
    code = _exit_code(result)
    if code is not ExitCode.OK:
        raise typer.Exit(int(code))
