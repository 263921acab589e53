"""Archive benchmark: L1 -> L2 rates and the codecs' size on a mixed Chinese/English chat corpus.

    .venv/bin/python bench/archive_bench.py [--rows 20000] [--codec-rows 50000] [--chunk-rows 10000]

  * rates: a fresh PostgreSQL database (created and dropped here) gets --rows messages, 40 days
    old; then `Archiver.run` (Parquet + manifest per chunk into the real S3 server, read back
    and verified, then deleted from L1), `verify` (every chunk re-read), and `restore` (every
    chunk back into L1) are each timed once. Rows/min of each.
  * codecs: --codec-rows generated messages (bodies mixing Chinese and English chat text,
    emoji, a few long ones, the shape of Message.to_wire) encoded in --chunk-rows chunks with
    lz4, snappy and zstd (and uncompressed Parquet for reference). Bytes per message and the
    ratio raw/compressed, raw being the UTF-8 JSON of each message as the gateway sends it.

Servers: the postgres and s3 recorded by `python -m tests.infra up` are reused when they
answer, otherwise private ones are started and destroyed at the end. tests/infra runs
PostgreSQL with fsync=off: the numbers are for this machine and setup only.
A benchmark, not a test: it asserts nothing. One JSON object on stdout; progress on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import platform
import random
import sys
import time
import uuid
from pathlib import Path

import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.archive import ArchivePolicy, Archiver, chunkfile  # noqa: E402
from services.backends.messagedb.postgres import PostgresMessageDB  # noqa: E402
from services.backends.s3.objectstore import S3ObjectStore  # noqa: E402
from services.common import codec  # noqa: E402
from services.common.model import Message, now_ms  # noqa: E402

DAY_MS = 86_400_000
CONVERSATIONS = 200
INSERT_BATCH = 1000
_ZH = ("你好", "今天", "我们", "开会", "吃饭了吗", "明天见", "好的", "没问题", "谢谢", "这个项目", "进度",
       "周末", "一起", "看电影", "哈哈哈", "收到", "稍等", "马上到", "辛苦了", "文件已发送", "请查收",
       "下午三点", "会议室", "北京", "上海", "天气不错", "加油", "晚安", "早上好", "合同", "客户")
_EN = ("hello", "meeting", "tomorrow", "ok", "thanks", "deploy", "the", "build", "is", "green", "lunch",
       "see you", "at", "3pm", "ship it", "review", "please", "check", "PR", "release", "notes", "sure",
       "on my way", "lol", "great", "job", "team", "the client", "call", "later", "weekend")
_EMOJI = ("😀", "👍", "🎉", "🙏", "🔥", "❤️")


def log(line: str) -> None:
    print(f"[archive_bench] {line}", file=sys.stderr, flush=True)


def corpus(rows: int, *, seed: int = 7, start_ms: int) -> list[Message]:
    """Chat-like messages: 1..40 tokens, ~60% Chinese tokens, sometimes emoji or a long paste."""
    rng = random.Random(seed)
    seqs = [0] * CONVERSATIONS
    out = []
    for n in range(rows):
        c = rng.randrange(CONVERSATIONS)
        seqs[c] += 1
        words = []
        for _ in range(max(1, int(rng.expovariate(1 / 8)) % 40)):
            words.append(rng.choice(_ZH) if rng.random() < 0.6 else rng.choice(_EN))
            if rng.random() < 0.05:
                words.append(rng.choice(_EMOJI))
        text = "".join(w if w[0] > "\u2e80" else f" {w} " for w in words).strip()
        if rng.random() < 0.01:
            text = (text + "。") * rng.randint(10, 40)
        conversation = f"group:g{c}" if c % 3 else f"c2c:u{c}:u{c + 1000}"
        out.append(Message(
            msg_id=10_000_000_000 + n, client_msg_id=f"cm-{n}", conversation_id=conversation,  # type: ignore[arg-type]
            sender_id=f"u{rng.randrange(5000)}", sender_device=rng.choice(("phone", "laptop", "tablet")),  # type: ignore[arg-type]
            content_type="text", body={"text": text}, created_at=start_ms + n * 50, seq=seqs[c]))
    return out


def codec_sizes(messages: list[Message], chunk_rows: int) -> dict:
    raw = sum(len(codec.dumps(m.to_wire())) for m in messages)
    out = {"rows": len(messages), "raw_bytes": raw, "raw_bytes_per_message": round(raw / len(messages), 1)}
    for name in ("none", *chunkfile.CODECS):
        started = time.perf_counter()
        size = 0
        for start in range(0, len(messages), chunk_rows):
            part = messages[start:start + chunk_rows]
            if name == "none":  # uncompressed Parquet, for reference
                sink = io.BytesIO()
                pq.write_table(chunkfile.to_table(part), sink, compression="none")
                size += len(sink.getvalue())
            else:
                size += len(chunkfile.encode(part, name))
        out[name] = {"bytes": size, "bytes_per_message": round(size / len(messages), 1),
                     "ratio": round(raw / size, 2), "encode_s": round(time.perf_counter() - started, 3)}
    return out


async def rates(pg_url: str, s3_url: str, rows: int, chunk_rows: int) -> dict:
    import asyncpg

    admin = await asyncpg.connect(pg_url)
    name = f"archive_bench_{uuid.uuid4().hex[:8]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    base = pg_url.rsplit("/", 1)[0]
    db = PostgresMessageDB.from_url(f"{base}/{name}")
    store = S3ObjectStore.from_url(s3_url.rsplit("/", 1)[0] + f"/bench-{uuid.uuid4().hex[:8]}")
    try:
        await db.start()
        await db.migrate()
        await store.start()
        messages = corpus(rows, start_ms=now_ms() - 40 * DAY_MS)
        t0 = time.perf_counter()
        for start in range(0, rows, INSERT_BATCH):
            await db.insert_messages(messages[start:start + INSERT_BATCH])
        log(f"inserted {rows} rows in {time.perf_counter() - t0:.1f}s")
        archiver = Archiver(db, store, ArchivePolicy(codec="zstd", chunk_rows=chunk_rows))
        t0 = time.perf_counter()
        report = await archiver.run(before_ms=now_ms() - 30 * DAY_MS)
        archive_s = time.perf_counter() - t0
        log(f"archived {report.rows_archived} rows in {archive_s:.2f}s")
        t0 = time.perf_counter()
        results = await archiver.verify()
        verify_s = time.perf_counter() - t0
        assert all(r.ok for r in results), results
        t0 = time.perf_counter()
        restored = 0
        for chunk in await archiver.list():
            restored += sum((await archiver.restore(chunk_id=chunk.chunk_id)).values())
        restore_s = time.perf_counter() - t0
        log(f"verified in {verify_s:.2f}s, restored {restored} rows in {restore_s:.2f}s")
        return {
            "rows": rows, "chunk_rows": chunk_rows, "codec": "zstd", "chunks": len(report.chunks),
            "archive_rows_per_min": round(report.rows_archived / archive_s * 60),
            "verify_rows_per_min": round(sum(r.rows for r in results) / verify_s * 60),
            "restore_rows_per_min": round(restored / restore_s * 60),
            "archive_s": round(archive_s, 3), "verify_s": round(verify_s, 3), "restore_s": round(restore_s, 3),
            "object_bytes": report.bytes_written,
        }
    finally:
        await store.close()
        await db.close()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--codec-rows", type=int, default=50_000)
    parser.add_argument("--chunk-rows", type=int, default=10_000)
    parser.add_argument("--skip-servers", action="store_true", help="Only the codec sizes.")
    args = parser.parse_args()
    out: dict = {"bench": "archive", "python": platform.python_version(), "machine": platform.machine()}
    out["codecs"] = codec_sizes(corpus(args.codec_rows, start_ms=0), args.chunk_rows)
    log("codec sizes done")
    if not args.skip_servers:
        from bench.backends_bench import acquire_servers, release_servers

        servers, started = acquire_servers(["postgres", "s3"])
        try:
            out["postgres_to_s3"] = asyncio.run(rates(servers["postgres"].url, servers["s3"].url, args.rows,
                                                      args.chunk_rows))
        finally:
            release_servers(started)
    print(json.dumps(out, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
