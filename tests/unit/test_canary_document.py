"""The canary document: validated like its target kind, and which instances it applies to."""

from __future__ import annotations

import pytest

from services.common.documents import StoredDocument, effective_document, parse_manifest, spec_digest
from services.common.errors import InvalidInput


def stored(kind: str, version: int, spec: dict) -> StoredDocument:
    _, normalized = parse_manifest({"kind": kind, "spec": spec})
    return StoredDocument(kind=kind, version=version, spec=normalized, digest=spec_digest(normalized))


def test_the_inner_spec_is_normalized_as_the_target_kind_would_be():
    kind, spec = parse_manifest({"kind": "canary", "spec": {
        "kind": "filter-rules", "instances": ["f2", "f1", "f2"], "base_version": 3,
        "spec": {"sensitive_words": ["Beta", "beta", "alpha"]}}})
    direct = parse_manifest({"kind": "filter-rules", "spec": {"sensitive_words": ["Beta", "beta", "alpha"]}})[1]
    assert kind == "canary" and spec["instances"] == ["f1", "f2"] and spec["spec"] == direct


@pytest.mark.parametrize(("spec", "message"), [
    ({"kind": "topology", "instances": ["f1"], "base_version": 0, "spec": {}}, "spec.kind: 'topology' cannot be canaried"),
    ({"kind": "filter-rules", "instances": [""], "base_version": 0, "spec": {}}, "instances"),
    ({"kind": "filter-rules", "instances": ["f1"], "base_version": -1, "spec": {}}, "base_version"),
    ({"kind": "filter-rules", "instances": ["f1"], "base_version": 0, "spec": {"sensitive_wordz": []}}, "sensitive_wordz"),
])
def test_bad_canaries_are_named(spec, message):
    with pytest.raises(InvalidInput, match=message):
        parse_manifest({"kind": "canary", "spec": spec})


def test_only_named_instances_get_the_canary_and_only_while_the_base_is_served():
    base = stored("filter-rules", 3, {"sensitive_words": ["alpha"]})
    new = {"sensitive_words": ["alpha", "beta"]}
    canary = stored("canary", 1, {"kind": "filter-rules", "instances": ["f1"], "base_version": 3, "spec": new})
    served = {"filter-rules": base, "canary": canary}
    doc = effective_document(served, "filter-rules", "f1")
    assert (doc.version, doc.spec, doc.digest) == (4, stored("filter-rules", 4, new).spec, spec_digest(doc.spec))
    assert effective_document(served, "filter-rules", "f2") is base
    assert effective_document(served, "push", "f1") is None
    # promoted: the same spec applied as v4 has the digest the canary instance already runs
    promoted = stored("filter-rules", 4, new)
    assert (promoted.version, promoted.digest) == (doc.version, doc.digest)
    assert effective_document({"filter-rules": promoted, "canary": canary}, "filter-rules", "f1") is promoted
    ended = stored("canary", 2, {"kind": "filter-rules", "instances": [], "base_version": 3, "spec": new})
    assert effective_document({"filter-rules": base, "canary": ended}, "filter-rules", "f1") is base
