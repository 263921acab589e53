"""parse_frame's nesting limit (docs/protocol.md: `max_depth` in hello), on both sides of the
shortcut that skips the walk for frames with few brackets."""

from __future__ import annotations

import json

import pytest

from services.gateway.frames import MAX_DEPTH, BadFrame, parse_frame


def _nested(levels: int) -> str:
    """A send frame whose body nests so that the whole frame is `levels` deep."""
    body: object = "leaf"
    for _ in range(levels - 1):
        body = [body]
    return json.dumps({"type": "send", "client_msg_id": "c-1", "to": "bob", "body": body})


def test_a_frame_at_the_limit_is_accepted_and_one_deeper_is_refused_with_its_ref():
    frame, ref = parse_frame(_nested(MAX_DEPTH))
    assert frame["type"] == "send" and ref == "c-1"
    with pytest.raises(BadFrame, match=f"deeper than {MAX_DEPTH}") as caught:
        parse_frame(_nested(MAX_DEPTH + 1))
    assert caught.value.ref == "c-1"


def test_brackets_inside_strings_never_count_as_nesting():
    text = "{[" * 200
    frame, _ = parse_frame(json.dumps({"type": "send", "client_msg_id": "c-2", "to": "bob", "body": text}))
    assert frame["body"] == text


def test_many_shallow_containers_are_walked_and_accepted():
    # More brackets than the limit, none deep: the walk runs and finds depth 3.
    body = {f"k{i}": [i] for i in range(MAX_DEPTH * 2)}
    frame, _ = parse_frame(json.dumps({"type": "send", "client_msg_id": "c-3", "to": "bob", "body": body}))
    assert frame["body"]["k0"] == [0]
