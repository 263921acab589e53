"""filter-rules documents: validation errors name the field; words dedupe case-insensitively."""

from __future__ import annotations

import pytest

from services.common.errors import InvalidInput
from services.common.documents.filter_rules import MAX_WORD_LENGTH, MAX_WORDS, fold_case, parse_rules

SEED_DOCUMENT = {
    "sensitive_words": ["word1", "word2"],
    "spam_rules": [{"type": "frequency", "limit": 10, "window": 60}],
    "media_rules": {"max_size": 10485760, "allowed_types": ["image/jpeg", "image/png"]},
}


def test_the_original_design_document_parses() -> None:
    rules = parse_rules(SEED_DOCUMENT)
    assert rules.action == "block"
    assert rules.word_actions() == {"word1": "block", "word2": "block"}
    assert rules.spam_rules[0].limit == 10 and rules.spam_rules[0].window == 60
    assert rules.media_rules is not None and rules.media_rules.max_size == 10485760


def test_words_as_objects_and_a_default_action() -> None:
    rules = parse_rules({"action": "mask", "sensitive_words": ["a1", {"word": "b2", "action": "block"}, {"word": "c3"}]})
    assert rules.word_actions() == {"a1": "mask", "b2": "block", "c3": "mask"}


def test_duplicates_fold_case_and_the_stricter_action_wins() -> None:
    rules = parse_rules({"sensitive_words": [{"word": "Spam", "action": "mask"}, "SPAM", {"word": "spam", "action": "mask"}]})
    assert rules.word_actions() == {"spam": "block"}


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"sensitive_words": ["ok", ""]}, "sensitive_words.1.word"),
        ({"sensitive_words": ["ok", "   "]}, "sensitive_words.1.word"),
        ({"sensitive_words": ["x" * (MAX_WORD_LENGTH + 1)]}, "sensitive_words.0.word"),
        ({"sensitive_words": [{"word": "x", "action": "shout"}]}, "sensitive_words.0.action"),
        ({"sensitive_words": [42]}, "sensitive_words.0"),
        ({"sensitive_words": "word1"}, "sensitive_words"),
        ({"action": "drop"}, "action"),
        ({"spam_rules": [{"type": "frequency", "limit": 0, "window": 60}]}, "spam_rules.0.limit"),
        ({"spam_rules": [{"type": "frequency", "limit": 5, "window": -1}]}, "spam_rules.0.window"),
        ({"spam_rules": [{"type": "burst", "limit": 5, "window": 1}]}, "spam_rules.0.type"),
        ({"media_rules": {"max_size": 0}}, "media_rules.max_size"),
        ({"media_rules": {"allowed_types": ["jpeg"]}}, "media_rules.allowed_types"),
        ({"sensitve_words": ["typo"]}, "sensitve_words"),
    ],
)
def test_every_error_names_its_field(document: dict, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_rules(document)
    assert caught.value.details["field"] == field
    assert field in caught.value.message


def test_the_word_count_is_bounded() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_rules({"sensitive_words": [f"w{i}" for i in range(MAX_WORDS + 1)]})
    assert caught.value.details["field"] == "sensitive_words"


def test_a_document_must_be_an_object() -> None:
    with pytest.raises(InvalidInput):
        parse_rules(["word1"])


def test_fold_case_keeps_offsets() -> None:
    assert fold_case("İstanbul ABC 中国") == "istanbul abc 中国"
    assert len(fold_case("İİ")) == 2
