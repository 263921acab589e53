"""Backends benchmark: Kafka / FileLog produce rate and PostgreSQL / SQLite insert rate.

    .venv/bin/python bench/backends_bench.py [--seconds 5] [--producers 200] [--skip-servers]

Goes through Flare's own adapters, on real servers from tests/infra:
  * Log (services/backends/log.py): KafkaLog (idempotent producer, acks=all, as the adapter
    configures it) and the embedded FileLog (file:///tmp/…, fsync=batch, its default).
    Case "single": N concurrent `produce` calls in flight, 100-byte values, keyed by one of
    100 conversation ids, on an 8-partition topic. Case "batch": sequential `produce_batch`
    calls of 500 records. Records/s and p50/p99 latency of each call.
  * MessageDB (services/backends/messagedb/): PostgresMessageDB (a fresh database with a
    random name, created and dropped here, `migrate()` first) and the embedded
    SQLiteMessageDB (a temp file). `insert_messages` of batches of 1, 10, 100, 1000 messages
    across 100 conversations, seqs assigned per conversation like the store consumer does,
    plus "row_by_row": one message per call, sequentially, over the same workload as the
    1000-message batches. Rows/s.

Servers: the kafka and postgres recorded in .servers/endpoints.json (`python -m tests.infra up`)
are reused when they answer; otherwise the script starts private ones through
tests.infra.servers.start_server and destroys them at the end (the endpoints file is not
touched). Note tests/infra runs PostgreSQL with fsync=off and a one-node Kafka (replication 1),
so the numbers are for this machine and this setup only.

Every case is bounded in time (--seconds, plus a hard wall-clock cap) and in count.
A benchmark, not a test: it asserts nothing about speed. Prints one JSON object on stdout;
progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402

from services.backends.embedded.filelog import FileLog  # noqa: E402
from services.backends.messagedb.sqlite import SQLiteMessageDB  # noqa: E402
from services.backends.kafka.log import KafkaLog  # noqa: E402
from services.backends.log import Log  # noqa: E402
from services.backends.messagedb import MessageDB  # noqa: E402
from services.backends.messagedb.postgres import PostgresMessageDB  # noqa: E402
from services.common.ids import MessageIdGenerator  # noqa: E402
from services.common.model import Message  # noqa: E402

PARTITIONS = 8
CONVERSATIONS = 100
VALUE_BYTES = 100
LOG_BATCH = 500
DB_BATCHES = (1, 10, 100, 1000)
MAX_RECORDS_PER_CASE = 1_000_000  # count cap of a Log case
MAX_ROWS_PER_CASE = 500_000  # count cap of a MessageDB case
HARD_CAP_EXTRA_S = 30.0  # a case is cancelled this long after its time budget


def log(line: str) -> None:
    print(f"[backends_bench] {line}", file=sys.stderr, flush=True)


def percentile(samples: list[float], q: float) -> float | None:
    if not samples:
        return None
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 3)


async def bounded(coro: Awaitable, seconds: float, what: str):
    """Run one case with a hard wall-clock cap on top of its own time budget."""
    try:
        return await asyncio.wait_for(coro, timeout=seconds + HARD_CAP_EXTRA_S)
    except TimeoutError:
        log(f"{what}: hit the hard cap of {seconds + HARD_CAP_EXTRA_S:.0f}s")
        return {"error": "hard time cap hit"}


# -- servers ---------------------------------------------------------------------------------

def acquire_servers(kinds: list[str]) -> tuple[dict[str, object], list[object]]:
    """{kind: server handle}, and the servers this process started (to destroy at the end)."""
    from tests.infra.servers import endpoints_file, load_running, start_server

    servers: dict[str, object] = {}
    started: list[object] = []
    for kind in kinds:
        running = load_running(kind) if endpoints_file().exists() else None
        if running is not None:
            log(f"{kind}: reusing {running.url} from {endpoints_file()}")
            servers[kind] = running
            continue
        log(f"{kind}: none recorded/answering; starting a private one via tests.infra (may install first)")
        t0 = time.monotonic()
        server = start_server(kind)
        started.append(server)
        servers[kind] = server
        log(f"{kind}: started at {server.url} in {time.monotonic() - t0:.1f}s")
    return servers, started


def release_servers(started: list[object]) -> None:
    for server in started:
        try:
            server.destroy()
            log(f"{server.kind}: stopped the private server")
        except Exception as exc:  # noqa: BLE001 - best effort at the end
            log(f"{server.kind}: could not stop: {exc!r}")


# -- Log -------------------------------------------------------------------------------------

def conversation_keys() -> list[bytes]:
    return [f"group:bench-{i:03d}".encode() for i in range(CONVERSATIONS)]


async def log_single(log_: Log, topic: str, *, producers: int, seconds: float) -> dict:
    """`producers` coroutines, each with one `produce` in flight at a time."""
    keys = conversation_keys()
    value = os.urandom(VALUE_BYTES)
    latencies: list[float] = []
    issued = itertools.count()
    deadline = time.perf_counter() + seconds

    async def producer(worker: int) -> None:
        rng = random.Random(worker)
        while time.perf_counter() < deadline and next(issued) < MAX_RECORDS_PER_CASE:
            t0 = time.perf_counter()
            await log_.produce(topic, value, key=rng.choice(keys))
            latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(producer(i) for i in range(producers)))
    elapsed = time.perf_counter() - t0
    return {
        "producers_in_flight": producers,
        "records": len(latencies),
        "seconds": round(elapsed, 3),
        "records_s": round(len(latencies) / elapsed, 1),
        "p50_ms": ms(percentile(latencies, 50)),
        "p99_ms": ms(percentile(latencies, 99)),
    }


async def log_batch(log_: Log, topic: str, *, seconds: float) -> dict:
    """Sequential `produce_batch` calls of LOG_BATCH records; latency is per call."""
    keys = conversation_keys()
    value = os.urandom(VALUE_BYTES)
    rng = random.Random(7)
    latencies: list[float] = []
    records = 0
    deadline = time.perf_counter() + seconds
    t0 = time.perf_counter()
    while time.perf_counter() < deadline and records < MAX_RECORDS_PER_CASE:
        batch = [(rng.choice(keys), value) for _ in range(LOG_BATCH)]
        s = time.perf_counter()
        metas = await log_.produce_batch(topic, batch)
        latencies.append(time.perf_counter() - s)
        records += len(metas)
    elapsed = time.perf_counter() - t0
    return {
        "batch": LOG_BATCH,
        "calls": len(latencies),
        "records": records,
        "seconds": round(elapsed, 3),
        "records_s": round(records / elapsed, 1),
        "p50_ms": ms(percentile(latencies, 50)),
        "p99_ms": ms(percentile(latencies, 99)),
    }


async def bench_log(make: Callable[[], Log], name: str, *, producers: int, seconds: float,
                    cleanup: Callable[[str], Awaitable[None]] | None = None) -> dict:
    log_ = make()
    await log_.start()
    topic = f"bench-{name}-{uuid.uuid4().hex[:8]}"
    try:
        await log_.create_topic(topic, partitions=PARTITIONS)
        # warm-up (metadata, connections, first segment files), not measured
        await asyncio.gather(*(log_.produce(topic, b"w" * VALUE_BYTES, key=k) for k in conversation_keys()))
        await log_.produce_batch(topic, [(k, b"w" * VALUE_BYTES) for k in conversation_keys()])
        log(f"{name}: single produce, {producers} in flight, {seconds}s")
        single = await bounded(log_single(log_, topic, producers=producers, seconds=seconds), seconds, f"{name} single")
        log(f"{name}: {single}")
        log(f"{name}: produce_batch of {LOG_BATCH}, {seconds}s")
        batch = await bounded(log_batch(log_, topic, seconds=seconds), seconds, f"{name} batch")
        log(f"{name}: {batch}")
        ends = await log_.end_offsets(topic)
        return {"partitions": PARTITIONS, "value_bytes": VALUE_BYTES, "keys": CONVERSATIONS,
                "single": single, "batch": batch, "records_in_topic": sum(ends.values())}
    finally:
        await log_.close()
        if cleanup is not None:
            await cleanup(topic)


async def delete_kafka_topic(bootstrap: str, topic: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        await admin.start()
        await admin.delete_topics([topic])
    except Exception as exc:  # noqa: BLE001 - best effort
        log(f"kafka: could not delete topic {topic}: {exc!r}")
    finally:
        await admin.close()


# -- MessageDB ---------------------------------------------------------------------------------

class MessageFactory:
    """Distinct msg_id / client_msg_id, seq assigned per conversation like the store consumer."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)
        self._ids = MessageIdGenerator(node_id=seed % 1024)
        self._convs = [f"group:bench-{i:03d}" for i in range(CONVERSATIONS)]
        self._seq = dict.fromkeys(self._convs, 0)
        self._client = itertools.count(1)

    def take(self, count: int) -> list[Message]:
        out = []
        now = int(time.time() * 1000)
        for _ in range(count):
            conv = self._rng.choice(self._convs)
            self._seq[conv] += 1
            n = next(self._client)
            out.append(Message(
                msg_id=self._ids.next_id(), client_msg_id=f"cm-{n}", conversation_id=conv,  # type: ignore[arg-type]
                sender_id=f"user-{self._rng.randrange(1000)}",  # type: ignore[arg-type]
                sender_device="phone",  # type: ignore[arg-type]
                content_type="text", body={"text": f"benchmark message {n} " + "x" * 60},
                created_at=now, seq=self._seq[conv],
            ))
        return out


async def db_case(db: MessageDB, factory: MessageFactory, *, batch: int, per_call: int, seconds: float) -> dict:
    """Insert messages in calls of `per_call` messages, in groups of `batch` generated at once.

    per_call == batch: batches; per_call == 1: row by row over the same workload.
    """
    rows = 0
    calls = 0
    busy = 0.0  # time inside insert_messages only (message building excluded)
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline and rows < MAX_ROWS_PER_CASE:
        messages = factory.take(batch)
        for start in range(0, len(messages), per_call):
            if start and time.perf_counter() >= deadline:
                break  # row by row: stop inside the group too (the rest is never inserted)
            chunk = messages[start:start + per_call]
            t0 = time.perf_counter()
            await db.insert_messages(chunk)
            busy += time.perf_counter() - t0
            rows += len(chunk)
            calls += 1
    return {"rows": rows, "calls": calls, "seconds": round(busy, 3), "rows_s": round(rows / busy, 1)}


async def bench_messagedb(db: MessageDB, name: str, *, seconds: float) -> dict:
    out: dict = {}
    factory = MessageFactory(seed=11)
    # warm-up: connections, prepared statements, first pages
    await db.insert_messages(factory.take(100))
    details = {}
    for batch in DB_BATCHES:
        log(f"{name}: insert_messages batch {batch}, {seconds}s")
        result = await bounded(db_case(db, factory, batch=batch, per_call=batch, seconds=seconds), seconds,
                               f"{name} batch {batch}")
        log(f"{name}: batch_{batch} {result}")
        out[f"batch_{batch}"] = result.get("rows_s")
        details[f"batch_{batch}"] = result
    log(f"{name}: row by row (1 message per call, sequential), {seconds}s")
    result = await bounded(db_case(db, factory, batch=max(DB_BATCHES), per_call=1, seconds=seconds), seconds,
                           f"{name} row by row")
    log(f"{name}: row_by_row {result}")
    out["row_by_row"] = result.get("rows_s")
    details["row_by_row"] = result
    if out["row_by_row"]:
        out["speedup_vs_row_by_row"] = {k: round(v / out["row_by_row"], 1) for k, v in out.items()
                                        if k.startswith("batch_") and v}
    out["rows_total"] = await db.count_messages()
    out["details"] = details
    return out


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, ""))


async def bench_postgres(admin_url: str, *, seconds: float) -> dict:
    name = f"flare_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(admin_url)
    try:
        version = await admin.fetchval("SHOW server_version")
        fsync = await admin.fetchval("SHOW fsync")
        sync_commit = await admin.fetchval("SHOW synchronous_commit")
        await admin.execute(f'CREATE DATABASE "{name}"')
        log(f"postgres: created database {name}")
        db = PostgresMessageDB.from_url(with_database(admin_url, name))
        try:
            await db.start()
            applied = await db.migrate()
            async with db._conn("read storage mode") as conn:  # noqa: SLF001 - reporting only
                mode = await conn.fetchval("SELECT value FROM messagedb_meta WHERE key = 'storage_mode'")
            result = await bench_messagedb(db, "postgres", seconds=seconds)
        finally:
            await db.close()
        result["server"] = {"version": version, "fsync": fsync, "synchronous_commit": sync_commit,
                            "storage_mode": mode, "migrations": len(applied), "database": name}
        return result
    finally:
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            log(f"postgres: dropped database {name}")
        finally:
            await admin.close()


async def bench_sqlite(*, seconds: float) -> dict:
    directory = tempfile.mkdtemp(prefix="flare-bench-sqlite-", dir="/tmp")
    try:
        db = SQLiteMessageDB.from_url(f"sqlite:///{directory}/messages.db")
        await db.start()
        try:
            await db.migrate()
            result = await bench_messagedb(db, "sqlite", seconds=seconds)
        finally:
            await db.close()
        result["settings"] = {"journal_mode": "WAL", "synchronous": "NORMAL", "path": f"{directory}/messages.db"}
        return result
    finally:
        shutil.rmtree(directory, ignore_errors=True)


# -- main --------------------------------------------------------------------------------------

async def run(args: argparse.Namespace, servers: dict[str, object]) -> dict:
    out: dict = {}
    if "kafka" in servers:
        kafka = servers["kafka"]
        bootstrap = kafka.bootstrap_servers
        out["kafka"] = await bench_log(
            lambda: KafkaLog.from_url(kafka.url), "kafka", producers=args.producers, seconds=args.seconds,
            cleanup=lambda topic: delete_kafka_topic(bootstrap, topic))
        out["kafka"]["server"] = {"url": kafka.url, "acks": "all", "idempotent": True, "linger_ms": 5,
                                  "replication_factor": 1}
    directory = tempfile.mkdtemp(prefix="flare-bench-filelog-", dir="/tmp")
    try:
        out["filelog"] = await bench_log(lambda: FileLog.from_url(f"file://{directory}"), "filelog",
                                         producers=args.producers, seconds=args.seconds)
        out["filelog"]["settings"] = {"fsync": "batch", "dir": directory}
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    if "postgres" in servers:
        out["postgres"] = await bench_postgres(servers["postgres"].url, seconds=args.seconds)
    out["sqlite"] = await bench_sqlite(seconds=args.seconds)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="time budget of each case")
    parser.add_argument("--producers", type=int, default=200, help="concurrent single produce calls")
    parser.add_argument("--skip-servers", action="store_true", help="embedded backends only (FileLog, SQLite)")
    args = parser.parse_args()

    started_at = time.monotonic()
    servers, started = ({}, []) if args.skip_servers else acquire_servers(["kafka", "postgres"])
    try:
        result = asyncio.run(run(args, servers))
    finally:
        release_servers(started)
    result["machine"] = {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "servers_started_here": [s.kind for s in started],
        "seconds_per_case": args.seconds,
        "total_seconds": round(time.monotonic() - started_at, 1),
        "load_avg_1m_at_end": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
