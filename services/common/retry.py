"""Exponential backoff with jitter, shared by every service that retries."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

__all__ = ["RetryPolicy", "retry_async"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 5
    base_delay: float = 0.05
    max_delay: float = 2.0
    multiplier: float = 2.0
    jitter: float = 0.2  # fraction of the delay, applied as +/- uniform noise

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("delays must be >= 0")
        if self.multiplier < 1:
            raise ValueError("multiplier must be >= 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter must be within 0..1")

    def delay(self, attempt: int, *, rng: random.Random | None = None) -> float:
        """Delay before retry number `attempt` (1 = the first retry)."""
        raw = min(self.max_delay, self.base_delay * self.multiplier ** (attempt - 1))
        if self.jitter:
            noise = (rng or random).uniform(-self.jitter, self.jitter)
            raw = max(0.0, raw * (1 + noise))
        return min(raw, self.max_delay)

    def delays(self) -> list[float]:
        return [self.delay(n) for n in range(1, self.max_attempts)]


async def retry_async(
    policy: RetryPolicy,
    operation: Callable[[], Awaitable[T]],
    *,
    retry_on: tuple[type[BaseException], ...],
    on_retry: Callable[[int, BaseException], None] | None = None,
) -> T:
    """Run `operation` until it succeeds or `policy.max_attempts` is reached."""
    attempt = 1
    while True:
        try:
            return await operation()
        except retry_on as exc:
            if attempt >= policy.max_attempts:
                raise
            if on_retry is not None:
                on_retry(attempt, exc)
            await asyncio.sleep(policy.delay(attempt))
            attempt += 1
