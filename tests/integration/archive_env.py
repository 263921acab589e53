"""Shared set-up of the archive tests: a fresh, migrated MessageDB and an object store —
SQLite + a directory, or a real PostgreSQL + the real S3 server the suite starts."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from services.backends.registry import open_messagedb, open_objectstore
from services.common.model import Message

DAY_MS = 86_400_000


def s3_server(request):
    """The S3-compatible server fixture, whichever the infra provides (MinIO today, SeaweedFS next)."""
    for name in ("s3_server", "seaweedfs_server", "minio_server"):
        try:
            return request.getfixturevalue(name)
        except pytest.FixtureLookupError:
            continue
    pytest.skip("no S3 server fixture")


@dataclass
class Env:
    kind: str
    db_url: str
    objects_url: str
    db: Any = None
    objects: Any = None
    psql: Any = None  # PostgreSQL only: run SQL through psql

    async def open(self) -> Env:
        self.db, self.objects = open_messagedb(self.db_url), open_objectstore(self.objects_url)
        await self.db.start()
        await self.db.migrate()
        await self.objects.start()
        return self

    async def close(self) -> None:
        for backend in (self.objects, self.db):
            if backend is not None:
                await backend.close()


def make_env(kind: str, request, tmp_path) -> Env:
    if kind == "sqlite":
        return Env("sqlite", f"sqlite:///{tmp_path / 'messages.db'}", f"file://{tmp_path / 'objects'}")
    server = request.getfixturevalue("postgres_server")
    name = f"arch_{uuid.uuid4().hex[:10]}"
    url = server.create_database(name)
    s3 = s3_server(request)
    bucket = f"arch-{uuid.uuid4().hex[:8]}"
    return Env("postgres", url, s3.url_for(bucket), psql=lambda sql: server.psql(sql, database=name))


def traffic(conversations: dict[str, int], *, start_ms: int, step_ms: int = 1000, prefix: str = "t") -> list[Message]:
    """Messages with seqs 1..n per conversation, mixed Chinese/English bodies, ascending time."""
    out, t, n = [], start_ms, 0
    for conversation_id, count in conversations.items():
        for seq in range(1, count + 1):
            n += 1
            out.append(Message(
                msg_id=(abs(hash(prefix)) % 10_000) * 10_000_000 + n, client_msg_id=f"{prefix}-{n}",
                conversation_id=conversation_id, sender_id=f"user{seq % 3}", sender_device="phone",  # type: ignore[arg-type]
                content_type="text", body={"text": f"第{seq}条消息 message {seq} 你好 hello"},
                created_at=t, seq=seq))
            t += step_ms
    return out
