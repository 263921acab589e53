"""One archive chunk as bytes: a Parquet file any analytics engine (DuckDB, Spark) reads.

Columns mirror the `messages` table; `body` is the message's JSON text and `created_at` a
UTC millisecond timestamp. The schema version travels in the file's metadata and in the
manifest, so a reader can refuse a layout it does not know.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from services.common import codec
from services.common.errors import InvalidInput
from services.common.ids import ConversationId, DeviceId, UserId
from services.common.model import Message

__all__ = ["CODECS", "SCHEMA_VERSION", "encode", "decode", "to_table"]

SCHEMA_VERSION = 1
CODECS = ("lz4", "snappy", "zstd")
_SCHEMA = pa.schema([
    ("msg_id", pa.int64()),
    ("conversation_id", pa.string()),
    ("seq", pa.int64()),
    ("sender_id", pa.string()),
    ("sender_device", pa.string()),
    ("client_msg_id", pa.string()),
    ("content_type", pa.string()),
    ("body", pa.string()),  # JSON
    ("created_at", pa.timestamp("ms", tz="UTC")),
    ("flags", pa.int32()),
], metadata={b"flare.schema_version": str(SCHEMA_VERSION).encode()})


def to_table(messages: Sequence[Message]) -> pa.Table:
    return pa.table({
        "msg_id": [m.msg_id for m in messages],
        "conversation_id": [m.conversation_id for m in messages],
        "seq": [m.seq for m in messages],
        "sender_id": [m.sender_id for m in messages],
        "sender_device": [m.sender_device for m in messages],
        "client_msg_id": [m.client_msg_id for m in messages],
        "content_type": [m.content_type for m in messages],
        "body": [codec.dumps_str(m.body) for m in messages],
        "created_at": [m.created_at for m in messages],
        "flags": [m.flags for m in messages],
    }, schema=_SCHEMA)


def encode(messages: Sequence[Message], compression: str) -> bytes:
    if compression not in CODECS:
        raise InvalidInput(f"unknown archive codec {compression!r} (known: {', '.join(CODECS)})")
    sink = io.BytesIO()
    pq.write_table(to_table(messages), sink, compression=compression)
    return sink.getvalue()


def decode(data: bytes, *, conversation_id: str | None = None) -> list[Message]:
    """The chunk's messages in file order (by conversation, seq); raise InvalidInput when the
    bytes are not a Parquet file of this schema."""
    try:
        table = pq.read_table(io.BytesIO(data))
    except (pa.ArrowException, OSError) as exc:
        raise InvalidInput(f"not a readable Parquet chunk: {exc}") from exc
    version = (table.schema.metadata or {}).get(b"flare.schema_version", b"?").decode()
    if version != str(SCHEMA_VERSION) or table.schema.remove_metadata() != _SCHEMA.remove_metadata():
        raise InvalidInput(f"archive chunk schema version {version} is not {SCHEMA_VERSION}")
    if conversation_id is not None:
        table = table.filter(pa.compute.equal(table["conversation_id"], conversation_id))
    cols = {name: table[name].to_pylist() for name in _SCHEMA.names if name != "created_at"}
    created = table["created_at"].cast(pa.int64()).to_pylist()
    return [
        Message(msg_id=cols["msg_id"][i], client_msg_id=cols["client_msg_id"][i],
                conversation_id=ConversationId(cols["conversation_id"][i]), sender_id=UserId(cols["sender_id"][i]),
                sender_device=DeviceId(cols["sender_device"][i]), content_type=cols["content_type"][i],
                body=codec.loads(cols["body"][i]), created_at=created[i], seq=cols["seq"][i], flags=cols["flags"][i])
        for i in range(table.num_rows)
    ]
