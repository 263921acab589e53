"""The channel's dataclasses pickle by their fields (services/common/pickling.py)."""

from __future__ import annotations

import copy
import copyreg
import pickle
from dataclasses import dataclass, field

import pytest

from services.common.model import (
    ConversationEvent, Cursor, DeviceType, Message, Session, SessionStatus, SyncEvent, SyncType,
)
from services.common.pickling import pickled_by_fields
from services.router.types import SendResult
from services.store.types import AcceptResult, Reservation


def _samples() -> list[object]:
    return [
        Message(7, "c-1", "c2c:a:b", "a", "d1", "text", {"text": "hi", "n": [1, 2]}, 1_700_000_000_000, seq=3, flags=1),
        SyncEvent(7, 3, "d1", SyncType.RECALL, 5),
        ConversationEvent("group:g", SyncType.RECALL, 7, 3, "a", 9, for_user="b", event_id=2, payload={"x": 1}),
        Cursor(4, 2),
        SendResult(7, True, "masked"),
        AcceptResult(7, False),
        Reservation(7, duplicate=True, stored=False),
    ]


@pytest.mark.parametrize("value", _samples(), ids=lambda v: type(v).__name__)
def test_round_trip_keeps_every_field(value):
    assert type(value) in copyreg.dispatch_table
    back = pickle.loads(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
    assert back == value and type(back) is type(value)
    assert copy.copy(value) == value and copy.deepcopy(value) == value


def test_a_deep_copy_does_not_share_mutable_fields():
    m = _samples()[0]
    twin = copy.deepcopy(m)
    twin.body["n"].append(3)
    assert m.body["n"] == [1, 2]


def test_session_round_trip():
    s = Session("a", "d1", DeviceType.MOBILE, "conn-1", "gw-1", 5, SessionStatus.ONLINE)
    assert pickle.loads(pickle.dumps(s)) == s


def test_a_single_field_class_and_a_refused_one():
    @pickled_by_fields
    @dataclass(slots=True)
    class One:
        x: int

    globals()["One"] = One  # pickle finds classes by module and name
    One.__qualname__ = "One"
    assert pickle.loads(pickle.dumps(One(3))) == One(3)

    with pytest.raises(TypeError, match="__init__"):
        @pickled_by_fields
        @dataclass
        class Derived:
            x: int = field(init=False, default=0)
