"""`filter-rules`: the filter service owns the model (services.filter.rules); the control
plane reuses it, so what the daemon accepts is exactly what the filter can apply, and only
adds the normalization it stores (word list deduplicated)."""

from __future__ import annotations

from services.common.errors import InvalidInput
from services.filter.rules import FILTER_RULES_KIND, MAX_WORDS, FilterRules, fold_case, parse_rules

__all__ = ["FILTER_RULES_KIND", "MAX_WORDS", "FilterRules", "validate_filter_rules"]


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
