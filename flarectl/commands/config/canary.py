"""`flarectl config canary -f FILE --instance ID [--instance ID…] [--dry-run]` / `config canary --end`.

Serves the document in FILE to the named instances only, as the next version of its kind,
made against the version served now (a `canary` document, ARCHITECTURE §7). Promote it with
`config apply -f FILE` (the canary instances already run it); `--end` sends the canary
instances the served version again.
"""

from __future__ import annotations

import typer

from flarectl.console import OutputFormat, emit, fail
from flarectl.exitcodes import ExitCode
from flarectl.cpclient import CONTEXT_OPTION, call_controlplane, read_manifest
from services.common.errors import InvalidInput, NotFound


def _human(data: object) -> str:
    r: dict = data  # type: ignore[assignment]
    c = r["canary"]
    if not c["instances"]:
        return f"canary of {c['kind']} ended (v{r['version']}): every instance runs v{c['base_version']}"
    verb = "would serve" if r["dry_run"] else "serving"
    return (f"canary v{r['version']}: {verb} {c['kind']} v{c['base_version'] + 1} to {', '.join(c['instances'])} "
            f"(everyone else keeps v{c['base_version']})")


def canary(
    file: str | None = typer.Option(None, "--file", "-f", help="The new document {kind, spec} (YAML or JSON; - for stdin)."),
    instance: list[str] = typer.Option([], "--instance", "-i", help="An instance id to run it (repeatable)."),
    end: bool = typer.Option(False, "--end", help="End the current canary."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate and show; change nothing."),
    output: OutputFormat = typer.Option(OutputFormat.table, "--output", "-o"),
    context: str | None = CONTEXT_OPTION,
) -> None:
    """Run a new document on a few instances before applying it to all."""
    if end == (file is not None) or (file is not None and not instance):
        fail("give -f FILE with --instance ID…, or --end", ExitCode.USAGE)
    manifest = read_manifest(file) if file is not None else {}

    async def finish(client) -> dict:
        try:
            current = await client.get("canary")
        except NotFound:
            raise NotFound("there is no canary to end") from None
        spec = {**current["spec"], "instances": []}
        result = await client.apply({"kind": "canary", "spec": spec}, dry_run=dry_run,
                                    comment=f"canary of {spec['kind']} ended")
        return {**result, "dry_run": dry_run, "canary": spec}

    async def work(client) -> dict:
        kind = manifest.get("kind")
        if not isinstance(kind, str):
            raise InvalidInput("kind: field required", field="kind")
        try:
            base_version = (await client.get(kind))["version"]
        except NotFound:
            base_version = 0
        spec = {"kind": kind, "instances": list(instance), "base_version": base_version, "spec": manifest.get("spec")}
        result = await client.apply({"kind": "canary", "spec": spec}, dry_run=dry_run,
                                    comment=f"canary of {kind} v{base_version + 1}")
        return {**result, "dry_run": dry_run, "canary": {**spec, "instances": sorted(set(instance))}}

    emit(call_controlplane(finish if end else work, context=context), output, human=_human)
