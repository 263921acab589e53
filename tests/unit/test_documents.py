"""The control plane's document models: normalization, and errors that name the field."""

from __future__ import annotations

import pytest

from services.common.documents import KINDS, decode_stored, parse_manifest, spec_digest, validate_spec
from services.common import codec
from services.common.errors import InvalidInput


def _error(manifest: dict) -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        parse_manifest(manifest)
    return info.value


def test_every_kind_has_valid_defaults_or_an_example():
    examples = {"filter-rules": {}, "push": {}, "tiering": {}, "routing": {},
                "topology": {"services": [{"name": "filter", "instances": [{"id": "f1", "address": "10.0.0.1:9000"}]}]},
                "canary": {"kind": "filter-rules", "instances": ["f1"], "base_version": 0, "spec": {}}}
    assert set(examples) == set(KINDS)
    for kind, spec in examples.items():
        assert isinstance(validate_spec(kind, spec), dict)


def test_push_document_from_the_design_validates_and_normalizes_durations():
    kind, spec = parse_manifest({"kind": "push", "spec": {
        "push_rules": {"max_retry": 3, "retry_interval": "1m", "batch_size": 100,
                       "quiet_hours": {"start": "23:00", "end": "07:00", "timezone": "Asia/Shanghai"}},
        "channels": {"apns": {"sandbox": False, "topic": "com.flare.im"}, "fcm": {"project_id": "flare-im"}}}})
    assert kind == "push"
    assert spec["push_rules"]["retry_interval"] == 60
    assert spec["channels"]["fcm"] == {"enabled": True, "project_id": "flare-im"}


@pytest.mark.parametrize(("manifest", "message"), [
    ({"kind": "push", "spec": {"push_rules": {"quiet_hours": {"start": "24:00", "end": "07:00"}}}},
     "invalid push: spec.push_rules.quiet_hours.start: '24:00' is not a time of day HH:MM (00:00-23:59)"),
    ({"kind": "push", "spec": {"push_rules": {"quiet_hours": {"start": "23:00", "end": "07:00", "timezone": "Mars/Base"}}}},
     "invalid push: spec.push_rules.quiet_hours.timezone: unknown time zone 'Mars/Base' (use an IANA name like 'Asia/Shanghai')"),
    ({"kind": "push", "spec": {"push_rules": {"batch_size": 0}}},
     "invalid push: spec.push_rules.batch_size: Input should be greater than 0"),
    ({"kind": "push", "spec": {"channels": {"apns": {"topic": ""}}}},
     "invalid push: spec.channels.apns.topic: String should have at least 1 character"),
    ({"kind": "push", "spec": {"push_rules": {"max_retires": 3}}},
     "invalid push: spec.push_rules.max_retires: Extra inputs are not permitted"),
    ({"kind": "tiering", "spec": {"l1_retention": "1d", "hot_cold_threshold": "2d"}},
     "invalid tiering: spec.hot_cold_threshold: must not exceed l1_retention (86400s)"),
    ({"kind": "tiering", "spec": {"compression": "gzip"}},
     "invalid tiering: spec.compression: Input should be 'lz4', 'snappy' or 'zstd'"),
    ({"kind": "tiering", "spec": {"l0_ttl": -5}}, "invalid tiering: spec.l0_ttl: must be a positive duration"),
    ({"kind": "routing", "spec": {"route_cache_ttl": "soon"}},
     "invalid routing: spec.route_cache_ttl: 'soon' is not a duration (seconds or e.g. '30s', '24h', '30d')"),
    ({"kind": "routing", "spec": {"conn_pool_size": 0}},
     "invalid routing: spec.conn_pool_size: Input should be greater than 0"),
    ({"kind": "filter-rules", "spec": {"spam_rules": [{"type": "frequency", "limit": 0, "window": 60}]}},
     "invalid filter-rules: spec.spam_rules.0.limit: Input should be greater than 0"),
    ({"kind": "topology", "spec": {"services": [{"name": "filter", "instances": [{"id": "a", "address": "host"}]}]}},
     "invalid topology: spec.services.0.instances.0.address: 'host' is not host:port with a port in 1..65535"),
    ({"kind": "nope", "spec": {}}, "kind: unknown kind 'nope' (known: filter-rules, push, tiering, routing, topology, canary)"),
    ({"kind": "routing"}, "spec: field required"),
    ({"kind": "routing", "spec": {}, "specs": {}}, "specs: unknown top-level field (expected kind and spec)"),
])
def test_invalid_documents_name_the_field(manifest, message):
    error = _error(manifest)
    assert error.message == message
    assert error.details["field"] in message


def test_word_lists_are_deduplicated_case_insensitively_and_bounded():
    _, spec = parse_manifest({"kind": "filter-rules", "spec": {"sensitive_words": ["Spam", "spam", " eggs ", "eggs"]}})
    assert spec["sensitive_words"] == [{"word": "Spam"}, {"word": "eggs"}]
    error = _error({"kind": "filter-rules", "spec": {"sensitive_words": ["ok", "  "]}})
    assert error.details["field"] == "spec.sensitive_words.1.word"  # index into what the operator wrote
    too_many = _error({"kind": "filter-rules", "spec": {"sensitive_words": [f"w{i}" for i in range(100_001)]}})
    assert too_many.details["field"] == "spec.sensitive_words"


def test_digest_ignores_field_order():
    assert spec_digest({"a": 1, "b": [1, 2]}) == spec_digest({"b": [1, 2], "a": 1})
    assert spec_digest({"a": 1}) != spec_digest({"a": 2})


def test_decode_stored_accepts_an_envelope_or_a_bare_spec_and_refuses_garbage():
    doc = decode_stored("routing", codec.dumps({"kind": "routing", "version": 4, "spec": {"batch_size": 7}}))
    assert (doc.version, doc.spec["batch_size"]) == (4, 7)
    bare = decode_stored("routing", codec.dumps({"batch_size": 9}))
    assert (bare.version, bare.spec["batch_size"]) == (0, 9)  # 0: the daemon assigns the next version
    with pytest.raises(InvalidInput, match="not JSON"):
        decode_stored("routing", b"{oops")
    with pytest.raises(InvalidInput, match="stored under config/routing"):
        decode_stored("routing", codec.dumps({"kind": "push", "spec": {}}))
