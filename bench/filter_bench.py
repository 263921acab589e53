"""Filter hot-path benchmark: raw Aho-Corasick scan vs the whole FilterService.check.

    .venv/bin/python bench/filter_bench.py [--words 10000] [--messages 1000] [--rounds 5]

Deterministic (seeded) inputs: sensitive words are half CJK (2-4 characters from
U+4E00..U+9FFF) and half lowercase ASCII (4-10 letters); messages are 200 characters of
mixed CJK and English with a word planted in every fifth one. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ahocorasick_rs  # noqa: E402

from services.common.model import Message  # noqa: E402
from services.filter import FilterService  # noqa: E402

MESSAGE_CHARS = 200


def cjk(rng: random.Random, length: int) -> str:
    return "".join(chr(rng.randint(0x4E00, 0x9FFF)) for _ in range(length))


def ascii_word(rng: random.Random, length: int) -> str:
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(length))


def make_words(rng: random.Random, count: int) -> list[str]:
    words: set[str] = set()
    while len(words) < count:
        words.add(cjk(rng, rng.randint(2, 4)) if len(words) % 2 else ascii_word(rng, rng.randint(4, 10)))
    return sorted(words)


def make_messages(rng: random.Random, words: list[str], count: int) -> list[str]:
    messages = []
    for index in range(count):
        parts: list[str] = []
        length = 0
        while length < MESSAGE_CHARS:
            part = cjk(rng, rng.randint(3, 12)) if rng.random() < 0.5 else ascii_word(rng, rng.randint(2, 8)).capitalize()
            parts.append(part)
            length += len(part) + 1
        if index % 5 == 0:
            parts.insert(rng.randrange(len(parts)), rng.choice(words).upper())
        messages.append(" ".join(parts)[:MESSAGE_CHARS])
    return messages


async def bench_check(service: FilterService, messages: list[Message], rounds: int) -> tuple[float, list[int]]:
    samples: list[int] = []
    total_ns = 0
    for _ in range(rounds):
        start = time.perf_counter_ns()
        for message in messages:
            await service.check(message)
        total_ns += time.perf_counter_ns() - start
    # Second pass for the latency distribution: timing each call separately adds the
    # timer's own cost, so the mean above is taken without it.
    for message in messages * rounds:
        start = time.perf_counter_ns()
        await service.check(message)
        samples.append(time.perf_counter_ns() - start)
    return total_ns / (rounds * len(messages)) / 1000, samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--words", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=20240101)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    words = make_words(rng, args.words)
    texts = make_messages(rng, words, args.messages)

    raw = ahocorasick_rs.AhoCorasick(words)
    start = time.perf_counter_ns()
    for _ in range(args.rounds):
        for text in texts:
            raw.find_matches_as_indexes(text)
    raw_us = (time.perf_counter_ns() - start) / (args.rounds * len(texts)) / 1000

    # Every third word masks instead of blocking, so both verdict paths are exercised.
    document = {
        "sensitive_words": [{"word": w, "action": "mask"} if i % 3 == 0 else w for i, w in enumerate(words)],
        "spam_rules": [{"type": "frequency", "limit": 10, "window": 60}],
        "media_rules": {"max_size": 10_485_760, "allowed_types": ["image/jpeg", "image/png"]},
    }
    build_start = time.perf_counter()
    service = FilterService(document)
    build_ms = (time.perf_counter() - build_start) * 1000
    # 1,000 senders at 1 message each per round: the frequency rule is checked (and the
    # window grows to `rounds` entries) but never trips, so every message is scanned.
    messages = [
        Message(i + 1, f"c{i}", "c2c:a:b", f"user{i}", "phone", "text", text, 0)  # type: ignore[arg-type]
        for i, text in enumerate(texts)
    ]
    gc.collect()
    check_us, samples = asyncio.run(bench_check(service, messages, args.rounds))
    samples.sort()
    verdicts = asyncio.run(_verdict_counts(document, messages))

    print(json.dumps({
        "words": len(words),
        "message_chars": MESSAGE_CHARS,
        "messages": len(texts),
        "rounds": args.rounds,
        "raw_ahocorasick_us_per_msg": round(raw_us, 3),
        "filter_check_us_per_msg": round(check_us, 3),
        "p50_us": round(statistics.median(samples) / 1000, 3),
        "p99_us": round(samples[int(len(samples) * 0.99)] / 1000, 3),
        "rules_build_ms": round(build_ms, 1),
        "verdicts": verdicts,
        "python": sys.version.split()[0],
    }))


async def _verdict_counts(document: dict, messages: list[Message]) -> dict[str, int]:
    service = FilterService(document)
    counts: dict[str, int] = {}
    for message in messages:
        verdict = await service.check(message)
        counts[verdict.action] = counts.get(verdict.action, 0) + 1
    return counts


if __name__ == "__main__":
    main()
