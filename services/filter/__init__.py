"""Filter service: sensitive words (block or mask), spam frequency and media rules."""

from .client import FilterClient
from .limiter import CacheFrequencyLimiter, FrequencyLimiter, InMemoryFrequencyLimiter
from .rules import FILTER_RULES_KIND, FilterRules, parse_rules
from .service import FilterService
from .types import FilterVerdict

__all__ = [
    "FILTER_RULES_KIND",
    "CacheFrequencyLimiter",
    "FilterClient",
    "FilterRules",
    "FilterService",
    "FilterVerdict",
    "FrequencyLimiter",
    "InMemoryFrequencyLimiter",
    "parse_rules",
]
