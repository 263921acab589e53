"""Filter service: sensitive words (block or mask), spam frequency and media rules."""

from .client import FilterClient
from .limiter import CacheFrequencyLimiter, FrequencyLimiter, InMemoryFrequencyLimiter
from .service import FilterService
from .types import FilterVerdict

__all__ = [
    "CacheFrequencyLimiter",
    "FilterClient",
    "FilterService",
    "FilterVerdict",
    "FrequencyLimiter",
    "InMemoryFrequencyLimiter",
]
