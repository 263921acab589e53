"""The shared kernel: ids, retry policy, tokens, conversation ids, process config."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from services.common.auth import TokenExpired, WrongAudience, issue_token, verify_token
from services.common.config import load_config
from services.common.errors import Unauthorized
from services.common.ids import (
    FLARE_EPOCH_MS,
    MessageIdGenerator,
    message_id_node,
    message_id_timestamp_ms,
    parse_message_id,
)
from services.common.model import Message, c2c_conversation_id, conversation_kind
from services.common.retry import RetryPolicy


class SteppingClock:
    def __init__(self, times: list[float]) -> None:
        self.times = times
        self.i = 0

    def __call__(self) -> float:
        t = self.times[min(self.i, len(self.times) - 1)]
        self.i += 1
        return t


def test_snowflake_carries_time_and_node():
    gen = MessageIdGenerator(42, clock=lambda: 1_800_000_000.123)
    mid = gen.next_id()
    assert message_id_node(mid) == 42
    assert message_id_timestamp_ms(mid) == 1_800_000_000_123
    assert parse_message_id(str(mid)) == mid


@given(st.lists(st.floats(min_value=FLARE_EPOCH_MS / 1000, max_value=4_000_000_000), min_size=2, max_size=300))
def test_snowflake_is_strictly_increasing_even_when_the_clock_steps_back(times):
    gen = MessageIdGenerator(1, clock=SteppingClock(times))
    ids = [gen.next_id() for _ in times]
    assert ids == sorted(set(ids))


def test_snowflake_borrows_the_next_millisecond_when_one_is_exhausted():
    gen = MessageIdGenerator(3, clock=lambda: 1_800_000_000.0)
    ids = [gen.next_id() for _ in range(5000)]
    assert ids == sorted(set(ids))
    assert message_id_timestamp_ms(ids[-1]) == 1_800_000_000_001


@pytest.mark.parametrize("bad", ["", "abc", "-1", "0", "1" * 20, 2**63, True, None, 1.5])
def test_absurd_message_ids_are_refused(bad):
    with pytest.raises(ValueError):
        parse_message_id(bad)


def test_node_id_is_bounded():
    with pytest.raises(ValueError):
        MessageIdGenerator(1024)


def test_retry_policy_backs_off_exponentially_up_to_the_cap():
    policy = RetryPolicy(max_attempts=6, base_delay=0.1, max_delay=1.0, multiplier=2.0, jitter=0)
    assert policy.delays() == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0])


def test_retry_policy_jitter_stays_within_bounds():
    policy = RetryPolicy(base_delay=1.0, max_delay=10.0, multiplier=1.0, jitter=0.2)
    assert all(0.8 <= policy.delay(1) <= 1.2 for _ in range(200))


@pytest.mark.parametrize("kwargs", [{"max_attempts": 0}, {"multiplier": 0.5}, {"base_delay": -1}, {"jitter": 2}])
def test_retry_policy_rejects_nonsense(kwargs):
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)


def test_tokens_verify_expire_and_resist_tampering():
    token = issue_token(b"k", "alice", ttl_s=60, now=1000)
    assert verify_token(b"k", token, audience="client", now=1030).subject == "alice"
    with pytest.raises(TokenExpired):
        verify_token(b"k", token, audience="client", now=1061)
    with pytest.raises(Unauthorized):
        verify_token(b"other", token, audience="client", now=1030)
    body, sig = token.split(".")
    with pytest.raises(Unauthorized):
        verify_token(b"k", body[:-2] + "xx." + sig, audience="client", now=1030)


def test_token_audiences_do_not_mix():
    client = issue_token(b"k", "alice")
    operator = issue_token(b"k", "bootstrap-admin", role="admin")
    assert verify_token(b"k", operator, audience="controlplane").role == "admin"
    with pytest.raises(WrongAudience, match="client token; it is not valid for the controlplane"):
        verify_token(b"k", client, audience="controlplane")
    with pytest.raises(WrongAudience, match="controlplane token; it is not valid for the client"):
        verify_token(b"k", operator, audience="client")
    with pytest.raises(ValueError):
        issue_token(b"k", "alice", role="admin", audience="client")
    a, b = verify_token(b"k", client, audience="client"), verify_token(b"k", issue_token(b"k", "alice"), audience="client")
    assert a.token_id and a.token_id != b.token_id  # each token has its own id
    assert a.issued_at != int(a.issued_at) or a.issued_at == round(a.issued_at, 3)  # ms precision, not whole seconds


def test_conversation_ids():
    assert c2c_conversation_id("bob", "alice") == "c2c:alice:bob"
    assert conversation_kind("group:team") == "group"
    for bad in ("c2c:bob:alice", "c2c:alice", "dm:a:b", "group:", "group:a b "):
        with pytest.raises(ValueError):
            conversation_kind(bad)


def test_message_wire_round_trip():
    msg = Message(msg_id=123, client_msg_id="c", conversation_id="c2c:a:b", sender_id="a", sender_device="d",
                  content_type="text", body={"k": [1, "二"]}, created_at=5, seq=9, flags=1)
    wire = msg.to_wire()
    assert wire["msg_id"] == "123"
    assert Message.from_wire(wire) == msg


def test_config_file_then_env_overrides(tmp_path):
    path = tmp_path / "flare.toml"
    path.write_text('[gateway]\nport = 9100\n[backends]\nlog = "kafka://127.0.0.1:9092"\n')
    cfg = load_config(path, environ={"FLARE_GATEWAY__PORT": "9200", "FLARE_BACKENDS__CACHE": "redis://h:1"})
    assert cfg.gateway.port == 9200
    assert cfg.backend_url("log") == "kafka://127.0.0.1:9092"
    assert cfg.backend_url("cache") == "redis://h:1"
    assert not cfg.embedded
    with pytest.raises(ValueError):
        load_config(environ={"FLARE_GATEWAY__PORT": "not-a-port"})


def test_other_tools_flare_variables_are_not_config():
    cfg = load_config(environ={"FLARE_REQUIRE_SERVERS": "1", "FLARE_TOKEN": "t", "FLARE_CONTROLPLANE": "h:1",
                               "FLARE_NODE_ID": "7"})
    assert cfg.node_id == 7
    with pytest.raises(ValueError, match="prot"):
        load_config(environ={"FLARE_GATEWAY__PROT": "1"})  # a typo inside a section is still an error
