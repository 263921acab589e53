"""The filter service: sensitive words, spam frequency and media rules (ARCHITECTURE §6).

Every message on the send path passes `check` once, so the hot path is kept to: one
reference read of the current compiled rules, one case fold and one Aho-Corasick scan
(C, all words at once) per text, and a deque append per frequency rule. Everything
that can be computed from the rules alone (the automaton, each pattern's action, the
allowed MIME set) is computed once in `apply_config`, off the event loop — validation in
a thread, a large automaton in a child process (_automaton.py) — and swapped in as one
reference, so checks already running finish on the rules they started with.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping

from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from services.common.documents.filter_rules import FILTER_RULES_KIND, FilterRules, fold_case, parse_rules
from services.common.errors import InvalidInput
from services.common.model import Message

from ._automaton import Automaton, build, build_off_loop
from .limiter import FrequencyLimiter, InMemoryFrequencyLimiter, LimiterFactory
from .types import VERDICTS, FilterVerdict

__all__ = ["FilterService", "MEDIA_CONTENT_TYPES"]

MEDIA_CONTENT_TYPES = frozenset({"image", "video", "file"})

RULE_WORDS = "sensitive_words"
RULE_FREQUENCY = "spam.frequency"
RULE_MEDIA_SIZE = "media.max_size"
RULE_MEDIA_TYPE = "media.allowed_types"
RULE_MEDIA_SHAPE = "media.body"

RULES = (RULE_WORDS, RULE_FREQUENCY, RULE_MEDIA_SIZE, RULE_MEDIA_TYPE, RULE_MEDIA_SHAPE)


class _FilterMetrics(Collector):
    """flare_filter_checks_total{verdict} and flare_filter_hits_total{rule}.

    Counted in plain ints and turned into samples at scrape time: a prometheus_client
    Counter.inc takes a lock (~0.6 µs), a tenth of the whole check on this path. Only
    the event-loop thread writes; the scraper only reads.
    """

    def __init__(self) -> None:
        self.checks = dict.fromkeys(VERDICTS, 0)
        self.hits = dict.fromkeys(RULES, 0)

    def collect(self):  # type: ignore[override]
        checks = CounterMetricFamily("flare_filter_checks", "Messages checked by the filter, by verdict", labels=["verdict"])
        for verdict, count in self.checks.items():
            checks.add_metric([verdict], count)
        hits = CounterMetricFamily("flare_filter_hits", "Messages that tripped a filter rule, by rule", labels=["rule"])
        for rule, count in self.hits.items():
            hits.add_metric([rule], count)
        return [checks, hits]


_METRICS = _FilterMetrics()
REGISTRY.register(_METRICS)
_CHECKS = _METRICS.checks
_HITS = _METRICS.hits

_MAX_BODY_DEPTH = 8  # object bodies are small JSON; deeper nesting is scanned as-is
_BLOCKED = object()  # scan result: a block-action word matched


class _Compiled:
    """Rules in the shape the hot path wants; immutable once built."""

    __slots__ = ("rules", "generation", "find", "masks_only", "mask_pattern", "limiters", "max_size", "allowed_types")

    def __init__(self, rules: FilterRules, limiters: tuple[FrequencyLimiter, ...], generation: int,
                 automaton: Automaton | None, actions: dict[str, str]) -> None:
        """`automaton`: built over `actions` (rules.word_actions()) in that order (None: no words)."""
        self.rules = rules
        self.generation = generation
        self.limiters = limiters
        self.find: Callable[[str], list[tuple[int, int, int]]] | None = automaton.find if automaton else None
        self.mask_pattern: tuple[bool, ...] = tuple(action == "mask" for action in actions.values())
        self.masks_only = all(self.mask_pattern)
        media = rules.media_rules
        self.max_size = media.max_size if media else None
        self.allowed_types = frozenset(media.allowed_types) if media and media.allowed_types is not None else None

    def scan_text(self, text: str) -> object:
        """None if clean, _BLOCKED if a block word matched, else the masked text."""
        # Overlapping matches: masking covers the union of every word's span, so no
        # word survives partly visible because a neighbour matched first.
        matches = self.find(fold_case(text))  # type: ignore[misc]
        if not matches:
            return None
        if not self.masks_only:
            mask_pattern = self.mask_pattern
            for pattern, _, _ in matches:
                if not mask_pattern[pattern]:
                    return _BLOCKED
        spans = sorted((start, end) for _, start, end in matches)
        pieces: list[str] = []
        cursor = 0
        for start, end in spans:
            if end <= cursor:
                continue
            start = max(start, cursor)
            pieces.append(text[cursor:start])
            pieces.append("*" * (end - start))
            cursor = end
        pieces.append(text[cursor:])
        return "".join(pieces)

    def scan_value(self, value: object, depth: int) -> object:
        """Like scan_text for any JSON value: strings anywhere in lists and objects."""
        if isinstance(value, str):
            return self.scan_text(value)
        if depth >= _MAX_BODY_DEPTH:
            return None
        if isinstance(value, dict):
            changed: dict | None = None
            for key, item in value.items():
                result = self.scan_value(item, depth + 1)
                if result is _BLOCKED:
                    return _BLOCKED
                if result is not None:
                    if changed is None:
                        changed = dict(value)
                    changed[key] = result
            return changed
        if isinstance(value, list):
            changed_list: list | None = None
            for index, item in enumerate(value):
                result = self.scan_value(item, depth + 1)
                if result is _BLOCKED:
                    return _BLOCKED
                if result is not None:
                    if changed_list is None:
                        changed_list = list(value)
                    changed_list[index] = result
            return changed_list
        return None


class FilterService:
    """Decides allow / mask / block / rate_limited for each message; satisfies FilterClient
    (services.filter.client) in-process.

    `clock` returns seconds (wall clock by default, so a Cache-backed limiter agrees
    across processes); `limiter_factory` builds one limiter per frequency rule.
    """

    def __init__(
        self,
        rules: Mapping[str, object] | None = None,
        *,
        clock: Callable[[], float] = time.time,
        limiter_factory: LimiterFactory = InMemoryFrequencyLimiter,
    ) -> None:
        self._clock = clock
        self._limiter_factory = limiter_factory
        self._apply_lock = asyncio.Lock()
        self._generation = 0
        initial = parse_rules(dict(rules or {}))
        actions = initial.word_actions()
        self._rules = self._compile(initial, previous=None, generation=0,
                                    automaton=build(list(actions)) if actions else None, actions=actions)

    @property
    def rules(self) -> FilterRules:
        return self._rules.rules

    @property
    def generation(self) -> int:
        """How many documents this instance has applied (0: the constructor's rules)."""
        return self._rules.generation

    async def apply_config(self, kind: str, document: dict) -> int:
        """Validate and swap in a new filter-rules document; return its local generation.

        On InvalidInput the running rules are untouched. Validation runs in a worker
        thread and a large automaton is built in a child process (it holds the GIL for
        seconds); the swap itself is one reference assignment on the event loop.
        """
        if kind != FILTER_RULES_KIND:
            raise InvalidInput(f"the filter service applies {FILTER_RULES_KIND!r} documents, not {kind!r}", field="kind")
        async with self._apply_lock:
            rules = await asyncio.to_thread(parse_rules, document)
            actions = await asyncio.to_thread(rules.word_actions)
            automaton = await build_off_loop(list(actions)) if actions else None
            previous = self._rules
            compiled = self._compile(rules, previous=previous, generation=previous.generation + 1,
                                     automaton=automaton, actions=actions)
            self._rules = compiled
        return compiled.generation

    def _compile(self, rules: FilterRules, *, previous: _Compiled | None, generation: int,
                 automaton: Automaton | None, actions: dict[str, str]) -> _Compiled:
        # Keep the counters of unchanged frequency rules: a word-list push must not
        # hand every spammer a fresh window.
        reusable = {(l.limit, l.window): l for l in previous.limiters} if previous else {}
        limiters = tuple(
            reusable.get((rule.limit, rule.window)) or self._limiter_factory(limit=rule.limit, window=rule.window)
            for rule in rules.spam_rules
        )
        return _Compiled(rules, limiters, generation, automaton, actions)

    async def check(self, message: Message) -> FilterVerdict:
        compiled = self._rules  # one read: a concurrent swap does not affect this check
        body = message.body

        if compiled.limiters:
            now = self._clock()
            for limiter in compiled.limiters:
                retry_after = await limiter.hit(message.sender_id, now)
                if retry_after is not None:
                    return _verdict(
                        "rate_limited", body, RULE_FREQUENCY,
                        f"more than {limiter.limit} messages in {limiter.window:g}s",
                        retry_after,
                    )

        if message.content_type in MEDIA_CONTENT_TYPES and (
            compiled.max_size is not None or compiled.allowed_types is not None
        ):
            refused = _check_media(compiled, body)
            if refused is not None:
                return refused

        if compiled.find is not None:
            if isinstance(body, str):
                result = compiled.scan_text(body)
            elif isinstance(body, (dict, list)):
                result = compiled.scan_value(body, 0)
            else:
                result = None
            if result is _BLOCKED:
                return _verdict("block", body, RULE_WORDS, "contains a sensitive word")
            if result is not None:
                return _verdict("mask", result, RULE_WORDS, "sensitive words masked")

        _CHECKS["allow"] += 1
        return FilterVerdict("allow", body)


def _verdict(action: str, body: object, rule: str, reason: str, retry_after: float | None = None) -> FilterVerdict:
    _CHECKS[action] += 1
    _HITS[rule] += 1
    return FilterVerdict(action, body, reason, rule, retry_after)


def _check_media(compiled: _Compiled, body: object) -> FilterVerdict | None:
    # Fail closed: a media message whose size or type cannot be read cannot be checked.
    size = body.get("size") if isinstance(body, dict) else None
    mime = body.get("mime") if isinstance(body, dict) else None
    if not isinstance(size, int) or isinstance(size, bool) or size < 0 or not isinstance(mime, str):
        return _verdict("block", body, RULE_MEDIA_SHAPE, "media body needs an integer 'size' and a string 'mime'")
    if compiled.max_size is not None and size > compiled.max_size:
        return _verdict("block", body, RULE_MEDIA_SIZE, f"{size} bytes is over the {compiled.max_size}-byte limit")
    if compiled.allowed_types is not None and mime.lower() not in compiled.allowed_types:
        return _verdict("block", body, RULE_MEDIA_TYPE, f"type {mime!r} is not allowed")
    return None
