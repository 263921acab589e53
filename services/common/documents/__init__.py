"""The documents the control plane keeps (ARCHITECTURE §9): one strict model per kind.

A manifest is what an operator writes, `{kind: push, spec: {...}}`; a stored document adds
the version the control plane assigned, a digest of the spec and who changed it. Specs are
stored normalized (defaults filled, lists deduplicated), so `config get`, diffs and digests
compare like with like. Every validation error names the field (`spec.push_rules.batch_size`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

import orjson
from pydantic import BaseModel, ValidationError

from services.common import codec
from services.common.errors import InvalidInput

from ._base import invalid
from .canary import CANARY_TARGETS, Canary
from .filter_rules import validate_filter_rules
from .push import PushConfig
from .routing import RoutingConfig
from .tiering import TieringPolicy
from .topology import Topology

__all__ = ["MAX_DOCUMENT_BYTES", "check_document_size", "KINDS", "MODELS", "StoredDocument", "load_spec", "validate_spec",
           "parse_manifest", "manifest_parts", "spec_digest", "decode_stored", "now_iso", "effective_document"]


# The largest stored document (spec and metadata, as JSON) the control plane accepts. The
# largest filter-rules document validation allows — 100k words of 64 characters, up to 4
# bytes each in UTF-8 — is ~26 MB; the gRPC limits of the daemon and every client are
# derived from this (controlplane.client.MAX_MESSAGE_BYTES), so what validates also travels.
MAX_DOCUMENT_BYTES = 32 * 1024 * 1024

# The kinds whose spec is one pydantic model (filter-rules has its own validator).
MODELS: dict[str, type[BaseModel]] = {
    "push": PushConfig,
    "tiering": TieringPolicy,
    "routing": RoutingConfig,
    "topology": Topology,
}


def load_spec(kind: str, spec: object) -> BaseModel:
    """The validated model of a spec of a kind in MODELS; InvalidInput naming the field."""
    if not isinstance(spec, dict):
        raise InvalidInput(f"invalid {kind}: spec: must be an object", field="spec")
    try:
        return MODELS[kind].model_validate(spec)
    except ValidationError as exc:
        raise invalid(kind, exc) from exc


def _model_validator(kind: str) -> Callable[[object], dict]:
    def validate(spec: object) -> dict:
        return load_spec(kind, spec).model_dump(mode="json", exclude_none=True)

    return validate


# kind -> validator returning the normalized spec. Order is display order.
KINDS: dict[str, Callable[[object], dict]] = {
    "filter-rules": validate_filter_rules,
    **{kind: _model_validator(kind) for kind in MODELS},
}



def _validate_canary(spec: object) -> dict:
    if not isinstance(spec, dict):
        raise InvalidInput("invalid canary: spec: must be an object", field="spec")
    try:
        canary = Canary.model_validate(spec)
    except ValidationError as exc:
        raise invalid("canary", exc) from exc
    if canary.kind not in CANARY_TARGETS:
        raise InvalidInput(f"invalid canary: spec.kind: {canary.kind!r} cannot be canaried "
                           f"(one of: {', '.join(CANARY_TARGETS)})", field="spec.kind")
    if any(not i or len(i) > 128 for i in canary.instances):
        raise InvalidInput("invalid canary: spec.instances: instance ids are 1..128 characters", field="spec.instances")
    # Normalized exactly as a document of that kind would be, so promoting it (applying the
    # same spec) gives the same digest the canary instances already run.
    inner = KINDS[canary.kind](canary.spec)
    return {"kind": canary.kind, "instances": sorted(set(canary.instances)), "base_version": canary.base_version,
            "spec": inner}


KINDS["canary"] = _validate_canary

_MANIFEST_FIELDS = {"kind", "spec", "version", "metadata", "apiVersion"}


def _check_kind(kind: object) -> str:
    if not isinstance(kind, str) or kind not in KINDS:  # a list is unhashable: not a TypeError
        raise InvalidInput(f"kind: unknown kind {kind!r} (known: {', '.join(KINDS)})", field="kind")
    return kind  # type: ignore[return-value]


def validate_spec(kind: str, spec: object) -> dict:
    return KINDS[_check_kind(kind)](spec)


def parse_manifest(data: object) -> tuple[str, dict]:
    """`{kind, spec}` from a file an operator wrote -> (kind, normalized spec)."""
    kind, spec = manifest_parts(data)
    return kind, validate_spec(kind, spec)


def manifest_parts(data: object) -> tuple[str, object]:
    """(kind, spec as written): the manifest's shape checked, the spec not validated yet."""
    if not isinstance(data, dict):
        raise InvalidInput("document must be an object with kind and spec", field="")
    unknown = sorted(set(data) - _MANIFEST_FIELDS)
    if unknown:
        raise InvalidInput(f"{unknown[0]}: unknown top-level field (expected kind and spec)", field=unknown[0])
    if "spec" not in data:
        raise InvalidInput("spec: field required", field="spec")
    return _check_kind(data.get("kind")), data["spec"]


def check_document_size(kind: str, size: int) -> None:
    if size > MAX_DOCUMENT_BYTES:
        raise InvalidInput(f"{kind}: the document is {size} bytes; the largest accepted is {MAX_DOCUMENT_BYTES} "
                           "bytes", field="spec", size=size, limit=MAX_DOCUMENT_BYTES)


def spec_digest(spec: dict) -> str:
    # Sorted keys make the digest independent of the order the operator wrote fields in.
    return hashlib.sha256(orjson.dumps(spec, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class StoredDocument:
    """What /flare/config/<kind> and /flare/config-history/<kind>/<version> hold."""

    kind: str
    version: int
    spec: dict
    digest: str = ""
    updated_at: str = ""
    updated_by: str = ""
    comment: str = ""
    extra: dict = field(default_factory=dict, repr=False)

    def to_json(self) -> bytes:
        return codec.dumps(self.to_dict())

    def to_dict(self) -> dict:
        # Shallow on purpose: dataclasses.asdict deep-copies the spec, 4.5 s for a
        # 100k-word filter list, on the event loop. The spec is never mutated in place.
        return {"kind": self.kind, "version": self.version, "spec": self.spec, "digest": self.digest,
                "updated_at": self.updated_at, "updated_by": self.updated_by, "comment": self.comment}


def decode_stored(kind: str, raw: bytes) -> StoredDocument:
    """Parse and validate what is stored under config/<kind>, however it got there.

    A direct etcdctl write may carry only `spec` (or even a bare spec): version 0 then
    means "not assigned yet" and the daemon assigns the next one.
    """
    try:
        data = codec.loads(raw)
    except codec.JSONDecodeError as exc:
        raise InvalidInput(f"invalid {kind}: value is not JSON ({exc})", field="") from exc
    if not isinstance(data, dict):
        raise InvalidInput(f"invalid {kind}: value must be a JSON object", field="")
    if "spec" not in data:  # a bare spec
        data = {"kind": kind, "spec": data}
    if data.get("kind", kind) != kind:
        raise InvalidInput(f"kind: {data.get('kind')!r} stored under config/{kind}", field="kind")
    version = data.get("version", 0)
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise InvalidInput(f"version: {version!r} is not a non-negative integer", field="version")
    spec = validate_spec(kind, data["spec"])
    return StoredDocument(kind=kind, version=version, spec=spec, digest=spec_digest(spec),
                          updated_at=str(data.get("updated_at", "")), updated_by=str(data.get("updated_by", "")),
                          comment=str(data.get("comment", "")))


def effective_document(served: dict[str, StoredDocument], kind: str, instance_id: str) -> StoredDocument | None:
    """What `instance_id` should run for `kind`: the served document, or a canary's spec while
    the canary names the instance and the kind is still at the canary's base version."""
    base = served.get(kind)
    canary = served.get("canary")
    if canary is None or kind == "canary":
        return base
    spec = canary.spec
    if spec.get("kind") != kind or instance_id not in spec.get("instances", ()):
        return base
    if (base.version if base is not None else 0) != spec.get("base_version"):
        return base  # the kind moved on: this canary is over
    inner = spec["spec"]
    return StoredDocument(kind=kind, version=spec["base_version"] + 1, spec=inner, digest=spec_digest(inner),
                          updated_at=canary.updated_at, updated_by=canary.updated_by,
                          comment=f"canary v{canary.version}")
