"""FilterService.check: words (block / mask), frequency, media, run-time rule swaps."""

from __future__ import annotations

import asyncio
import functools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY

import services.filter as filter_pkg
from services.backends.embedded.memcache import MemoryCache
from services.common.documents.filter_rules import fold_case
from services.common.errors import InvalidInput
from services.common.ids import ConversationId, DeviceId, UserId
from services.common.model import Message
from services.filter import (
    CacheFrequencyLimiter,
    FilterClient,
    FilterService,
    InMemoryFrequencyLimiter,
)


class FakeClock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def message(body: object, *, content_type: str = "text", sender: str = "alice") -> Message:
    return Message(
        msg_id=1,
        client_msg_id="c1",
        conversation_id=ConversationId("c2c:alice:bob"),
        sender_id=UserId(sender),
        sender_device=DeviceId("phone"),
        content_type=content_type,
        body=body,
        created_at=0,
    )


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# -- words ---------------------------------------------------------------------------
async def test_a_block_word_blocks_and_keeps_the_original_body() -> None:
    service = FilterService({"sensitive_words": ["forbidden"]})
    before = sample("flare_filter_checks_total", verdict="block")
    hits_before = sample("flare_filter_hits_total", rule="sensitive_words")

    verdict = await service.check(message("this is forbidden talk"))

    assert (verdict.action, verdict.rule, verdict.body) == ("block", "sensitive_words", "this is forbidden talk")
    assert not verdict.allowed
    assert "forbidden" not in verdict.reason  # never echo the word back
    assert sample("flare_filter_checks_total", verdict="block") == before + 1
    assert sample("flare_filter_hits_total", rule="sensitive_words") == hits_before + 1


async def test_clean_text_is_allowed_untouched() -> None:
    service = FilterService({"sensitive_words": ["forbidden"]})
    before = sample("flare_filter_checks_total", verdict="allow")
    body = "perfectly fine"
    verdict = await service.check(message(body))
    assert verdict.action == "allow" and verdict.body is body and verdict.allowed
    assert sample("flare_filter_checks_total", verdict="allow") == before + 1


async def test_mask_english_and_chinese() -> None:
    service = FilterService({"action": "mask", "sensitive_words": ["darn", "坏蛋", "傻瓜"]})
    verdict = await service.check(message("Darn it, 你这个坏蛋和傻瓜!"))
    assert verdict.action == "mask" and verdict.allowed
    assert verdict.body == "**** it, 你这个**和**!"


async def test_overlapping_words_mask_the_union_of_their_spans() -> None:
    service = FilterService({"action": "mask", "sensitive_words": ["abc", "bcd", "中国", "国人", "b"]})
    assert (await service.check(message("xabcdx"))).body == "x****x"
    assert (await service.check(message("我是中国人们"))).body == "我是***们"
    assert (await service.check(message("ab b"))).body == "a* *"


async def test_block_wins_over_mask_in_one_message() -> None:
    service = FilterService({"sensitive_words": [{"word": "meh", "action": "mask"}, "evil"]})
    assert (await service.check(message("meh and evil"))).action == "block"
    assert (await service.check(message("meh only"))).body == "*** only"


async def test_matching_ignores_latin_case_and_keeps_the_senders_case_elsewhere() -> None:
    service = FilterService({"action": "mask", "sensitive_words": ["BadWord", "istanbul"]})
    assert (await service.check(message("a BADWORD and a badword"))).body == "a ******* and a *******"
    assert (await service.check(message("Hi İSTANBUL!"))).body == "Hi ********!"


async def test_string_fields_of_object_bodies_are_scanned() -> None:
    service = FilterService({"action": "mask", "sensitive_words": ["darn"]})
    body = {"title": "DARN", "items": ["ok", "darn it"], "meta": {"note": "darn"}, "count": 3}
    verdict = await service.check(message(body, content_type="card"))
    assert verdict.action == "mask"
    assert verdict.body == {"title": "****", "items": ["ok", "**** it"], "meta": {"note": "****"}, "count": 3}
    assert body["title"] == "DARN"  # the original is not modified

    blocking = FilterService({"sensitive_words": ["darn"]})
    assert (await blocking.check(message({"a": {"b": ["darn"]}}, content_type="card"))).action == "block"


async def test_no_words_means_no_scan() -> None:
    service = FilterService()
    assert (await service.check(message("anything at all"))).action == "allow"


# -- frequency -----------------------------------------------------------------------
async def test_frequency_limit_per_sender_with_a_fake_clock() -> None:
    clock = FakeClock()
    service = FilterService({"spam_rules": [{"type": "frequency", "limit": 3, "window": 10}]}, clock=clock)
    for second in range(3):
        clock.now = 1_000.0 + second
        assert (await service.check(message("hi"))).action == "allow"

    clock.now = 1_004.0
    limited = await service.check(message("hi"))
    assert limited.action == "rate_limited" and limited.rule == "spam.frequency"
    assert limited.retry_after == pytest.approx(6.0)  # the first message leaves the window at 1010
    assert (await service.check(message("hi", sender="bob"))).action == "allow"  # per sender

    clock.now = 1_009.0  # refused attempts were not counted, so nothing new is owed
    assert (await service.check(message("hi"))).action == "rate_limited"
    clock.now = 1_010.0
    assert (await service.check(message("hi"))).action == "allow"
    assert (await service.check(message("hi"))).action == "rate_limited"


async def test_the_in_memory_limiter_forgets_quiet_senders() -> None:
    limiter = InMemoryFrequencyLimiter(limit=2, window=10)
    for index in range(100):
        assert await limiter.hit(f"user{index}", 0.0) is None
    assert len(limiter) == 100
    await limiter.hit("late", 11.0)
    assert len(limiter) == 1


async def test_the_cache_limiter_shares_counts_through_the_cache() -> None:
    cache = MemoryCache.from_url("memory://")
    await cache.start()
    try:
        clock = FakeClock(600.0)  # the start of a 60 s bucket
        # Two services (two instances in the split deployment) share one counter.
        factory = functools.partial(CacheFrequencyLimiter, cache)
        rules = {"spam_rules": [{"type": "frequency", "limit": 3, "window": 60}]}
        first = FilterService(rules, clock=clock, limiter_factory=factory)
        second = FilterService(rules, clock=clock, limiter_factory=factory)
        assert (await first.check(message("1"))).action == "allow"
        assert (await second.check(message("2"))).action == "allow"
        assert (await first.check(message("3"))).action == "allow"
        limited = await second.check(message("4"))
        assert limited.action == "rate_limited" and limited.retry_after is not None and limited.retry_after > 0
        # The next bucket weighs the previous one by how much of it is still in the
        # window: at its start all 3 count, a third of the way in only 2 do.
        clock.now = 660.0
        limited = await first.check(message("5"))
        assert limited.action == "rate_limited" and limited.retry_after == pytest.approx(20.0)
        clock.now = 680.0
        assert (await first.check(message("6"))).action == "allow"
        assert (await second.check(message("7"))).action == "rate_limited"
    finally:
        await cache.close()


async def test_frequency_counters_survive_a_word_list_push() -> None:
    clock = FakeClock()
    spam = [{"type": "frequency", "limit": 1, "window": 60}]
    service = FilterService({"spam_rules": spam}, clock=clock)
    assert (await service.check(message("hi"))).action == "allow"
    await service.apply_config("filter-rules", {"spam_rules": spam, "sensitive_words": ["new"]})
    assert (await service.check(message("hi"))).action == "rate_limited"


# -- media ---------------------------------------------------------------------------
MEDIA_RULES = {"media_rules": {"max_size": 1000, "allowed_types": ["image/jpeg", "image/png"]}}


@pytest.mark.parametrize(
    ("content_type", "body", "action", "rule"),
    [
        ("image", {"size": 1000, "mime": "image/png", "url": "u"}, "allow", ""),
        ("image", {"size": 1001, "mime": "image/png"}, "block", "media.max_size"),
        ("video", {"size": 10, "mime": "video/mp4"}, "block", "media.allowed_types"),
        ("file", {"size": 10, "mime": "IMAGE/JPEG"}, "allow", ""),
        ("image", {"mime": "image/png"}, "block", "media.body"),
        ("image", {"size": "10", "mime": "image/png"}, "block", "media.body"),
        ("image", "not an object", "block", "media.body"),
        ("text", {"size": 10**9, "mime": "x/y"}, "allow", ""),  # media rules are for media
    ],
)
async def test_media_rules(content_type: str, body: object, action: str, rule: str) -> None:
    service = FilterService(MEDIA_RULES)
    verdict = await service.check(message(body, content_type=content_type))
    assert (verdict.action, verdict.rule) == (action, rule)


# -- run-time rule swaps -------------------------------------------------------------
async def test_applied_rules_take_effect_and_report_a_generation() -> None:
    service = FilterService({"sensitive_words": ["old"]})
    assert service.generation == 0
    assert await service.apply_config("filter-rules", {"sensitive_words": ["new"]}) == 1
    assert (await service.check(message("old"))).action == "allow"
    assert (await service.check(message("new"))).action == "block"
    assert service.generation == 1


async def test_a_check_in_flight_finishes_on_the_rules_it_started_with() -> None:
    release = asyncio.Event()
    entered = asyncio.Event()

    class GatedLimiter(InMemoryFrequencyLimiter):
        async def hit(self, sender: str, now: float) -> float | None:
            entered.set()
            await release.wait()
            return None

    old_rules = {"sensitive_words": ["old"], "spam_rules": [{"type": "frequency", "limit": 9, "window": 9}]}
    service = FilterService(old_rules, limiter_factory=GatedLimiter)
    in_flight = asyncio.create_task(service.check(message("old and new")))
    await entered.wait()

    await service.apply_config("filter-rules", {"sensitive_words": [{"word": "new", "action": "mask"}]})
    assert (await service.check(message("old and new"))).body == "old and ***"

    release.set()
    assert (await in_flight).action == "block"  # matched "old" under the old rules


async def test_an_invalid_document_keeps_the_old_rules_and_names_the_field() -> None:
    service = FilterService({"sensitive_words": ["old"]})
    with pytest.raises(InvalidInput) as caught:
        await service.apply_config("filter-rules", {"sensitive_words": ["fine", ""], "spam_rules": []})
    assert caught.value.details["field"] == "sensitive_words.1.word"
    with pytest.raises(InvalidInput) as caught:
        await service.apply_config("filter-rules", {"spam_rules": [{"type": "frequency", "limit": -1, "window": 1}]})
    assert caught.value.details["field"] == "spam_rules.0.limit"
    with pytest.raises(InvalidInput) as caught:
        await service.apply_config("push", {"sensitive_words": ["x"]})
    assert caught.value.details["field"] == "kind"

    assert service.generation == 0
    assert (await service.check(message("old"))).action == "block"


# -- properties ----------------------------------------------------------------------
ALPHABET = "abAB xy中国人İ"
words_strategy = st.lists(st.text(alphabet=ALPHABET, min_size=1, max_size=4).filter(str.strip), min_size=1, max_size=8)


@settings(max_examples=200, deadline=None)
@given(words=words_strategy, text=st.text(alphabet=ALPHABET, max_size=40))
def test_masking_keeps_the_length_and_leaves_no_word(words: list[str], text: str) -> None:
    service = FilterService({"action": "mask", "sensitive_words": words})
    verdict = asyncio.run(service.check(message(text)))
    masked = verdict.body
    assert isinstance(masked, str) and len(masked) == len(text)
    folded = fold_case(masked)
    for word in words:
        assert fold_case(word) not in folded
    # Only matched characters change, and they become '*'.
    assert all(after in (before, "*") for before, after in zip(text, masked))


# -- surface -------------------------------------------------------------------------
async def test_the_service_is_its_own_in_process_filter_client() -> None:
    client = FilterService({"sensitive_words": ["x"]})
    assert isinstance(client, FilterClient)
    assert (await client.check(message("x"))).action == "block"
    assert await client.apply_config("filter-rules", {}) == 1


def test_public_names() -> None:
    assert sorted(filter_pkg.__all__) == sorted(
        [
            # The filter-rules model (FilterRules, parse_rules, ...) is services.common.documents'.
            "CacheFrequencyLimiter", "FilterClient", "FilterService",
            "FilterVerdict", "FrequencyLimiter", "InMemoryFrequencyLimiter",
        ]
    )
    for name in filter_pkg.__all__:
        assert hasattr(filter_pkg, name)
