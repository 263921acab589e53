"""Client frame validation (docs/protocol.md): turn untrusted JSON into checked values.

Hand-written checks rather than a schema library: this runs for every frame on the hot
path, and each failure must name the offending field.
"""

from __future__ import annotations

from collections.abc import Mapping

from services.common import codec
from services.common.errors import InvalidInput
from services.common.ids import parse_message_id
from services.common.model import MAX_ID_LENGTH, Cursor, c2c_conversation_id, conversation_kind, validate_name

__all__ = [
    "BadFrame",
    "MAX_DEPTH",
    "parse_frame",
    "frame_ref",
    "require_str",
    "require_int",
    "optional_str",
    "conversation_of_send",
    "conversation_field",
    "message_id_field",
    "cursors_field",
    "error_frame",
    "KNOWN_TYPES",
]

KNOWN_TYPES = frozenset({
    "send", "ack", "read", "sync", "recall", "delete", "heartbeat", "presence",
    "group_create", "group_join", "group_leave", "group_add", "group_remove", "group_set_role", "group_info",
})
_MAX_SEQ = 2**53  # JSON clients cannot represent more; anything above is absurd
# Arrays/objects nested in one frame, the frame object itself being level 1. Deep enough for
# any structured body; shallow enough that nothing downstream (serializers, protobuf
# conversion, logging) can hit Python's recursion limit.
MAX_DEPTH = 32


class BadFrame(InvalidInput):
    code = "bad_frame"


def parse_frame(raw: str | bytes) -> tuple[dict | None, str | None]:
    """(frame, ref): the checked frame, and the `ref` errors about it must carry.

    Raises BadFrame / InvalidInput with `.ref` set (None when the frame had no valid id)."""
    if isinstance(raw, bytes):
        raise BadFrame("binary frames are not supported; send JSON text frames")
    try:
        frame = codec.loads(raw)
    except codec.JSONDecodeError as exc:
        raise BadFrame(f"frame is not valid JSON: {exc}") from exc
    if not isinstance(frame, dict):
        raise BadFrame("frame must be a JSON object")
    ref = frame_ref(frame)
    try:
        _check_depth(frame, raw)
        raw_id = frame.get("id")
        if raw_id is not None and not isinstance(raw_id, str):
            raise BadFrame("field 'id' must be a string")
        if isinstance(raw_id, str) and not 1 <= len(raw_id) <= MAX_ID_LENGTH:
            raise InvalidInput(f"field 'id' must be 1 to {MAX_ID_LENGTH} characters")
        if not isinstance(frame.get("type"), str):
            raise BadFrame("field 'type' is required and must be a string")
    except InvalidInput as exc:
        exc.ref = ref
        raise
    return frame, ref


def frame_ref(frame: Mapping) -> str | None:
    """What answers to this frame echo as `ref`: its `id`, else (send) its client_msg_id;
    only if that is a string of 1..128 characters."""
    for field in ("id", "client_msg_id"):
        value = frame.get(field)
        if value is not None:
            return value if isinstance(value, str) and 1 <= len(value) <= MAX_ID_LENGTH else None
    return None


def _check_depth(frame: dict, raw: str) -> None:
    # Nesting is at most the number of '{' and '[' in the text (those inside strings only
    # add to the count): nearly every frame has a handful, and is not walked at all.
    if raw.count("{") + raw.count("[") <= MAX_DEPTH:
        return
    level: list = [frame]
    for depth in range(1, MAX_DEPTH + 1):
        children = [v for node in level for v in (node.values() if isinstance(node, dict) else node)
                    if isinstance(v, (dict, list))]
        if not children:
            return
        level = children
    raise BadFrame(f"frame nests deeper than {MAX_DEPTH} levels of arrays/objects")


def require_str(frame: Mapping, field: str, *, max_len: int = MAX_ID_LENGTH) -> str:
    value = frame.get(field)
    if not isinstance(value, str):
        raise BadFrame(f"field '{field}' is required and must be a string")
    # Right type, absurd value (docs/protocol.md §10): empty is as invalid as too long.
    if not value or len(value) > max_len:
        raise InvalidInput(f"field '{field}' must be 1 to {max_len} characters")
    return value


def optional_str(frame: Mapping, field: str, *, max_len: int = MAX_ID_LENGTH) -> str | None:
    if frame.get(field) is None:
        return None
    return require_str(frame, field, max_len=max_len)


def require_int(frame: Mapping, field: str, *, minimum: int = 0, maximum: int = _MAX_SEQ) -> int:
    value = frame.get(field)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadFrame(f"field '{field}' is required and must be an integer")
    if not minimum <= value <= maximum:
        raise InvalidInput(f"field '{field}' must be between {minimum} and {maximum}")
    return value


def message_id_field(frame: Mapping, field: str = "msg_id") -> int:
    if field not in frame:
        raise BadFrame(f"field '{field}' is required")
    try:
        return parse_message_id(frame[field])
    except ValueError as exc:
        raise InvalidInput(f"field '{field}': {exc}") from exc


def conversation_of_send(frame: Mapping, sender_id: str) -> str:
    """The conversation id of a send frame: given, or formed from `to` (never both)."""
    if frame.get("conversation_id") is not None and frame.get("to") is not None:
        raise BadFrame("a send frame takes 'conversation_id' or 'to', not both")
    if frame.get("conversation_id") is not None:
        return conversation_field(frame)
    if frame.get("to") is not None:
        to = require_str(frame, "to")
        try:
            validate_name(to, "to")
        except ValueError as exc:
            raise InvalidInput(f"field 'to': {exc}") from exc
        return c2c_conversation_id(sender_id, to)
    raise BadFrame("a send frame needs 'conversation_id' or 'to'")


def conversation_field(frame: Mapping) -> str:
    conversation_id = require_str(frame, "conversation_id", max_len=2 * MAX_ID_LENGTH + 8)
    try:
        conversation_kind(conversation_id)
    except ValueError as exc:
        raise InvalidInput(f"field 'conversation_id': {exc}") from exc
    return conversation_id


def cursors_field(frame: Mapping) -> dict[str, Cursor] | None:
    raw = frame.get("cursors")
    if raw is None:
        return None
    if not isinstance(raw, dict) or len(raw) > 10_000:
        raise BadFrame("field 'cursors' must be an object of at most 10000 conversations")
    cursors: dict[str, Cursor] = {}
    for conversation_id, value in raw.items():
        try:
            conversation_kind(conversation_id)
        except ValueError as exc:
            raise InvalidInput(f"field 'cursors': {exc}") from exc
        if not isinstance(value, dict):
            raise BadFrame(f"field 'cursors.{conversation_id}' must be an object with 'seq' and 'event_id'")
        cursors[conversation_id] = Cursor(
            seq=require_int(value, "seq") if "seq" in value else 0,
            event_id=require_int(value, "event_id") if "event_id" in value else 0,
        )
    return cursors


def error_frame(code: str, message: str, *, ref: object = None, details: dict | None = None) -> bytes:
    frame: dict[str, object] = {"type": "error", "code": code, "message": message}
    if ref is not None:
        frame["ref"] = ref
    if details:
        frame["details"] = details
    return codec.dumps(frame)
