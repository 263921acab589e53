"""FilterClient in-process and over gRPC: same verdicts, same errors."""

from __future__ import annotations

import pytest

from services.common.errors import InvalidInput
from services.common.ids import ConversationId, DeviceId, UserId
from services.common.model import Message
from services.filter import FilterService
from services.filter.api import serve
from services.filter.client import FilterClient, GrpcFilterClient

from .grpc_harness import CLIENT_KINDS, client_of

RULES = {
    "sensitive_words": ["darn", {"word": "forbidden", "action": "block"}],
    "action": "mask",
    "spam_rules": [{"type": "frequency", "limit": 3, "window": 60}],
    "media_rules": {"max_size": 1000, "allowed_types": ["image/png"]},
}


def message(body: object, *, content_type: str = "text", sender: str = "alice") -> Message:
    return Message(msg_id=1, client_msg_id="c1", conversation_id=ConversationId("c2c:alice:bob"),
                   sender_id=UserId(sender), sender_device=DeviceId("phone"), content_type=content_type,
                   body=body, created_at=1_700_000_000_000)


@pytest.fixture(params=CLIENT_KINDS)
async def client(request):
    service = FilterService(RULES, clock=lambda: 1_000.0)
    async with client_of(request.param, service, serve=serve,
                         grpc_client=GrpcFilterClient) as client:
        yield client


async def test_both_clients_implement_the_protocol(client) -> None:
    assert isinstance(client, FilterClient)


async def test_allow_keeps_the_body(client) -> None:
    body = {"text": "hello", "n": [1, 2.5, None, True]}
    verdict = await client.check(message(body))
    assert (verdict.action, verdict.body, verdict.rule, verdict.retry_after) == ("allow", body, "", None)
    assert verdict.allowed


async def test_mask_returns_the_masked_body(client) -> None:
    verdict = await client.check(message({"text": "oh darn it", "nested": ["DARN"]}))
    assert verdict.action == "mask"
    assert verdict.body == {"text": "oh **** it", "nested": ["****"]}
    assert (verdict.rule, verdict.reason) == ("sensitive_words", "sensitive words masked")


async def test_block_names_the_rule_without_the_word(client) -> None:
    verdict = await client.check(message("this is forbidden"))
    assert (verdict.action, verdict.rule, verdict.reason) == ("block", "sensitive_words", "contains a sensitive word")
    assert verdict.body == "this is forbidden"
    assert not verdict.allowed


async def test_media_rules(client) -> None:
    too_big = await client.check(message({"size": 5000, "mime": "image/png"}, content_type="image", sender="m1"))
    assert (too_big.action, too_big.rule) == ("block", "media.max_size")
    wrong_type = await client.check(message({"size": 10, "mime": "image/gif"}, content_type="image", sender="m2"))
    assert (wrong_type.action, wrong_type.rule, wrong_type.reason) == (
        "block", "media.allowed_types", "type 'image/gif' is not allowed")


async def test_rate_limited_carries_retry_after(client) -> None:
    for _ in range(3):
        assert (await client.check(message("hi", sender="spammer"))).action == "allow"
    verdict = await client.check(message("hi", sender="spammer"))
    assert (verdict.action, verdict.rule) == ("rate_limited", "spam.frequency")
    assert isinstance(verdict.retry_after, float) and 0 < verdict.retry_after <= 60


async def test_apply_config_swaps_rules_and_returns_the_generation(client) -> None:
    assert await client.apply_config("filter-rules", {"sensitive_words": ["gosh"]}) == 1
    verdict = await client.check(message("gosh, darn"))
    assert (verdict.action, verdict.body) == ("block", "gosh, darn")  # default action is block


async def test_apply_config_errors_keep_type_message_and_details(client) -> None:
    with pytest.raises(InvalidInput) as wrong_kind:
        await client.apply_config("push", {})
    assert str(wrong_kind.value) == "the filter service applies 'filter-rules' documents, not 'push'"
    assert wrong_kind.value.details == {"field": "kind"}

    with pytest.raises(InvalidInput) as bad:
        await client.apply_config("filter-rules", {"spam_rules": [{"type": "frequency", "limit": -1, "window": 1}]})
    assert bad.value.details.get("field", "").startswith("spam_rules")
    # the running rules are untouched
    assert (await client.check(message("darn"))).action == "mask"
