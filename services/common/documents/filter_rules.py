"""The `filter-rules` document (ARCHITECTURE §9) and its validation.

One model for both sides: the filter service applies exactly what the control plane
accepts (`parse_rules`), and the control plane stores the normalized form
(`validate_filter_rules`: word list deduplicated, error paths rooted at `spec.`). The
matching itself (the automaton) is the filter service's business (services/filter).

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
    "validate_filter_rules",
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


def _dedupe_words(spec: dict) -> dict:
    words = spec.get("sensitive_words")
    if not isinstance(words, list):
        return spec
    seen: set[object] = set()
    unique = []
    for entry in words:
        if isinstance(entry, str):
            key: object = fold_case(entry.strip())
        elif isinstance(entry, dict) and isinstance(entry.get("word"), str):
            key = (fold_case(entry["word"].strip()), entry.get("action"))
        else:
            key = object()  # malformed: keep it so validation reports it
        if key in seen:
            continue
        seen.add(key)
        unique.append(entry.strip() if isinstance(entry, str) else entry)
    return {**spec, "sensitive_words": unique}


def validate_filter_rules(spec: object) -> dict:
    if not isinstance(spec, dict):
        raise InvalidInput("invalid filter-rules: spec: must be an object", field="spec")
    try:
        # Validate what the operator wrote first, so error indexes point into their list.
        parse_rules(spec)
        rules = parse_rules(_dedupe_words(spec))
    except InvalidInput as exc:
        # Re-root the field paths at "spec." so they point into the file the operator wrote.
        errors = [{"field": f"spec.{e['field']}" if e.get("field") else "spec",
                   "error": str(e.get("error", "")).removeprefix("Value error, ")}
                  for e in exc.details.get("errors", [])] or [{"field": "spec", "error": exc.message}]
        summary = "; ".join(f"{e['field']}: {e['error']}" for e in errors[:5])
        raise InvalidInput(f"invalid filter-rules: {summary}", field=errors[0]["field"], errors=errors) from exc
    return rules.model_dump(mode="json", exclude_none=True)
