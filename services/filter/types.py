"""What the filter answers: the values its clients see, in-process or over gRPC."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FilterVerdict", "VERDICTS"]

VERDICTS = ("allow", "mask", "block", "rate_limited")


@dataclass(slots=True)  # not frozen: a frozen dataclass' __init__ costs ~3x on the hot path
class FilterVerdict:
    action: str  # one of VERDICTS
    body: object  # the masked body for "mask", the original otherwise
    reason: str = ""
    rule: str = ""  # the rule that decided: "sensitive_words", "spam.frequency", "media.max_size", …
    retry_after: float | None = None  # seconds, for "rate_limited"

    @property
    def allowed(self) -> bool:
        """True when the message may go on (possibly masked)."""
        return self.action == "allow" or self.action == "mask"
