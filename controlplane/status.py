"""`flarectl status`: every instance × kind as SYNCED / STALE / NACKED / NOT SENT
(istioctl proxy-status), read from the topology and status records in the store, so it
shows instances that are down too (their last record stays; health DOWN)."""

from __future__ import annotations

from services.backends.configstore import ConfigStore
from services.common import codec

from . import keys
from services.common.documents import KINDS, StoredDocument, effective_document

__all__ = ["SYNCED", "STALE", "NACKED", "NOT_SENT", "classify", "collect_status"]

SYNCED, STALE, NACKED, NOT_SENT = "SYNCED", "STALE", "NACKED", "NOT SENT"


def classify(record: dict | None, desired: StoredDocument | None) -> str:
    if desired is None or record is None:
        return NOT_SENT
    want = (desired.version, desired.digest)
    if record.get("state") == "NACK" and (record.get("version"), record.get("digest")) == want:
        return NACKED
    if (record.get("running_version"), record.get("running_digest")) == want:
        return SYNCED
    return STALE


def _load(raw: bytes) -> dict:
    try:
        value = codec.loads(raw)
    except codec.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


async def collect_status(store: ConfigStore, served: dict[str, StoredDocument]) -> list[dict]:
    topology, _ = await store.get_prefix(keys.TOPOLOGY)
    records, _ = await store.get_prefix(keys.STATUS)
    instances: dict[tuple[str, str], dict] = {}
    for kv in topology:
        service, _, instance_id = kv.key.removeprefix(keys.TOPOLOGY).partition("/")
        rec = _load(kv.value)
        instances[(service, instance_id)] = {
            "service": service, "instance_id": instance_id, "address": str(rec.get("address", "")),
            "health": "UP", "started_at": str(rec.get("started_at", "")), "software_version": str(rec.get("version", "")),
            "kinds": [k for k in rec.get("kinds", []) if k in KINDS], "records": {}}
    for kv in records:
        service, instance_id, kind = (kv.key.removeprefix(keys.STATUS).split("/", 2) + ["", ""])[:3]
        entry = instances.setdefault((service, instance_id), {
            "service": service, "instance_id": instance_id, "address": "", "health": "DOWN", "started_at": "",
            "software_version": "", "kinds": [], "records": {}})
        entry["records"][kind] = _load(kv.value)
    rows = []
    for key in sorted(instances):
        entry = instances.pop(key)
        records_by_kind = entry.pop("records")
        kinds = list(dict.fromkeys([*entry.pop("kinds"), *sorted(records_by_kind)]))
        entry["kinds"] = []
        for kind in kinds:
            record = records_by_kind.get(kind)
            desired = effective_document(served, kind, entry["instance_id"])  # a canary instance's own
            entry["kinds"].append({
                "kind": kind, "state": classify(record, desired), "desired_version": desired.version if desired else 0,
                "applied_version": int((record or {}).get("running_version", 0)),
                "error": str((record or {}).get("error", "")) if (record or {}).get("state") == "NACK" else "",
                "updated_at": str((record or {}).get("at", ""))})
        rows.append(entry)
    return rows
