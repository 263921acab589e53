"""The `filter-rules` document (ARCHITECTURE §9) and its validation.

Shape, with Flare's two additions (a top-level default `action`, and words given as
`{"word": …, "action": …}` objects):

    {"action": "block",
     "sensitive_words": ["word1", {"word": "word2", "action": "mask"}],
     "spam_rules": [{"type": "frequency", "limit": 10, "window": 60}],
     "media_rules": {"max_size": 10485760, "allowed_types": ["image/jpeg", "image/png"]}}

Every validation error is raised as InvalidInput whose message and `details["errors"]`
name the offending field (`sensitive_words.3`, `spam_rules.0.limit`, …), so a NACK
shown by `flarectl status` points at the line to fix.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from services.common.errors import InvalidInput

__all__ = [
    "FILTER_RULES_KIND",
    "MAX_WORDS",
    "MAX_WORD_LENGTH",
    "Action",
    "WordRule",
    "FrequencyRule",
    "MediaRules",
    "FilterRules",
    "parse_rules",
    "fold_case",
]

FILTER_RULES_KIND = "filter-rules"
MAX_WORDS = 100_000
MAX_WORD_LENGTH = 64

Action = Literal["block", "mask"]


def fold_case(text: str) -> str:
    """Lowercase without changing the length, so match offsets index the original text.

    str.lower() keeps the length of every code point but one: U+0130 (İ) becomes two.
    Folding it to a plain 'i' first keeps offsets aligned and still matches "istanbul".
    """
    folded = text.lower()
    if len(folded) != len(text):
        folded = text.replace("\u0130", "i").lower()
    return folded


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WordRule(_Model):
    word: str = Field(max_length=MAX_WORD_LENGTH)
    action: Action | None = None  # None: the document's default action

    @field_validator("word")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a sensitive word may not be empty or blank")
        return value


class FrequencyRule(_Model):
    type: Literal["frequency"]
    limit: int = Field(gt=0)
    window: float = Field(gt=0)  # seconds


class MediaRules(_Model):
    max_size: int | None = Field(default=None, gt=0)  # bytes
    allowed_types: list[str] | None = None  # None: any type; [] would refuse everything

    @field_validator("allowed_types")
    @classmethod
    def _mime_types(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        for index, mime in enumerate(value):
            if not mime or "/" not in mime:
                raise ValueError(f"allowed_types[{index}] {mime!r} is not a MIME type")
        return sorted({mime.lower() for mime in value})


class FilterRules(_Model):
    action: Action = "block"
    sensitive_words: list[WordRule] = Field(default_factory=list, max_length=MAX_WORDS)
    spam_rules: list[FrequencyRule] = Field(default_factory=list, max_length=16)
    media_rules: MediaRules | None = None

    @field_validator("sensitive_words", mode="before")
    @classmethod
    def _plain_words(cls, value: object) -> object:
        # Plain strings are the common case (the original design's shape); lift them to
        # WordRule so errors carry a clean path (sensitive_words.3.word).
        if isinstance(value, list):
            return [{"word": entry} if isinstance(entry, str) else entry for entry in value]
        return value

    def word_actions(self) -> dict[str, Action]:
        """Folded word -> action, deduplicated case-insensitively.

        A word listed twice with different actions keeps the stricter one (block):
        an operator who blocked a word somewhere meant it.
        """
        actions: dict[str, Action] = {}
        for entry in self.sensitive_words:
            action = entry.action or self.action
            folded = fold_case(entry.word)
            if actions.get(folded) != "block":
                actions[folded] = action
        return actions


def _field_path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


def parse_rules(document: object) -> FilterRules:
    """Validate a filter-rules document; InvalidInput naming each bad field otherwise."""
    if not isinstance(document, dict):
        raise InvalidInput("filter-rules document must be a JSON object", field="")
    try:
        return FilterRules.model_validate(document)
    except ValidationError as exc:
        errors = [{"field": _field_path(err["loc"]), "error": err["msg"]} for err in exc.errors()]
        summary = "; ".join(f"{e['field'] or '(document)'}: {e['error']}" for e in errors[:5])
        if len(errors) > 5:
            summary += f"; and {len(errors) - 5} more"
        raise InvalidInput(f"invalid filter-rules: {summary}", field=errors[0]["field"], errors=errors) from exc
