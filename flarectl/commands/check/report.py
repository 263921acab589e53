"""Hand the check's findings to the control plane: the deployment's ConfigStore key that the
daemon reads into SEQ_GAP alerts (controlplane/findings.py says why a key, not an RPC)."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlsplit

from controlplane import keys
from controlplane.findings import merge_findings, parse_record
from services.backends.registry import open_configstore
from services.common import codec
from services.common.errors import InvalidInput


async def report_findings(configstore_url: str, findings: list[dict], *, conversation: str | None,
                          since_ms: int | None) -> str | None:
    """Write the findings; None when written, else why not (said under "skipped")."""
    parts = urlsplit(configstore_url)
    if parts.scheme == "sqlite" and not Path(parts.path[1:]).exists():
        # no deployment has run here: do not create its store just to leave a note in it
        return f"report to the control plane: no control-plane store at {parts.path[1:]}"
    store = open_configstore(configstore_url)
    await store.start()
    try:
        kv = await store.get(keys.CONSISTENCY_FINDINGS)
        try:
            old = parse_record(kv.value if kv is not None else None)
        except InvalidInput:  # not a record this check wrote: replaced by one that is
            old = {"conversations": {}}
        record = merge_findings(old, findings,
                                scope_conversation=conversation, complete=since_ms is None, at=time.time())
        await store.put(keys.CONSISTENCY_FINDINGS, codec.dumps(record))
    finally:
        await store.close()
    return None
