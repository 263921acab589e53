"""The sensitive-word automaton, built without freezing the event loop, swapped in whole.

ahocorasick_rs holds the GIL for the whole of a build — 1-9 s for 100k words — so a worker
thread froze every client of the process as surely as building on the loop did, and the
built automaton cannot be pickled, so it cannot come from another process either. A long
word list is therefore built as several automata of at most CHUNK_CHARS pattern characters
each, one per worker-thread hop, the loop running between them: the longest freeze is one
chunk's build (~50 ms), not the whole list's. The price is one scan per chunk on the hot
path for lists past CHUNK_CHARS (10k typical words fit one; 100k take a handful).

Matches are (pattern index, start, end) in code points of the text, overlapping, with
indexes into the full word list whatever chunk found them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import ahocorasick_rs

__all__ = ["Automaton", "build", "build_off_loop", "CHUNK_CHARS"]

CHUNK_CHARS = 100_000

_Find = Callable[..., list[tuple[int, int, int]]]


class Automaton:
    """All the words; `find(text)` -> [(pattern index, start, end)], overlapping."""

    __slots__ = ("find", "chunks")

    def __init__(self, parts: list[tuple[int, _Find]]) -> None:
        self.chunks = len(parts)
        if len(parts) == 1 and parts[0][0] == 0:
            single = parts[0][1]
            self.find: Callable[[str], list[tuple[int, int, int]]] = lambda text: single(text, overlapping=True)
            return

        def find(text: str) -> list[tuple[int, int, int]]:
            out: list[tuple[int, int, int]] = []
            for first, part in parts:
                out.extend((first + index, start, end) for index, start, end in part(text, overlapping=True))
            return out

        self.find = find


def _chunks(words: Sequence[str]) -> list[tuple[int, Sequence[str]]]:
    out, start, chars = [], 0, 0
    for index, word in enumerate(words):
        if chars and chars + len(word) > CHUNK_CHARS:
            out.append((start, words[start:index]))
            start, chars = index, 0
        chars += len(word)
    out.append((start, words[start:]))
    return out


def _build_one(words: Sequence[str]) -> _Find:
    # The library's own choice (a contiguous NFA here) beats a full DFA on large lists:
    # the DFA's tables miss the CPU cache (bench/filter_bench.py).
    return ahocorasick_rs.AhoCorasick(list(words), store_patterns=False).find_matches_as_indexes


def build(words: Sequence[str]) -> Automaton:
    """In this thread, all at once: the constructor's rules and tests."""
    return Automaton([(first, _build_one(chunk)) for first, chunk in _chunks(words)])


async def build_off_loop(words: Sequence[str]) -> Automaton:
    parts = []
    for first, chunk in await asyncio.to_thread(_chunks, words):
        parts.append((first, await asyncio.to_thread(_build_one, chunk)))
    return Automaton(parts)
