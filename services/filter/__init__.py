"""Filter service: sensitive words (block or mask), spam frequency and media rules."""

from .client import FilterClient, InProcessFilterClient
from .limiter import CacheFrequencyLimiter, FrequencyLimiter, InMemoryFrequencyLimiter
from .service import FilterService, FilterVerdict

__all__ = [
    "CacheFrequencyLimiter",
    "FilterClient",
    "FilterService",
    "FilterVerdict",
    "FrequencyLimiter",
    "InMemoryFrequencyLimiter",
    "InProcessFilterClient",
]
