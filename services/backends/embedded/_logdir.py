"""A FileLog's directory on disk: taking it (one FileLog per directory, by flock), reading
every topic back with its partitions repaired, growing a topic, and letting it go again.

    .lock                                   flock: one FileLog per directory at a time
    topics/<topic>/meta.json                {"partitions": N, "retention_ms": …, "retention_bytes": …}
    topics/<topic>/<partition>/<base>.log   segments (format in _logfiles.py)
    groups/<quoted group>.json              committed offsets, replaced atomically

Every function here blocks (file I/O): FileLog runs them in a thread.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

from services.backends.log import TopicPartition
from services.common.errors import BackendUnavailable
from services.common.paths import create_private, ensure_private_dir, write_private

from ._logfiles import PartitionFiles, fsync_dir_sync
from ._logoffsets import group_paths_sync, load_offsets_sync, rewrite_offsets_sync
from ._logrepair import Damage, open_partition_sync, write_report_sync
from ._logretention import Retention

__all__ = ["open_log_dir_sync", "close_log_dir_sync", "grow_topic_sync"]


def open_log_dir_sync(log_dir: Path) -> tuple[int, dict[str, list[PartitionFiles]], list[Damage], dict[str, Retention]]:
    """(lock fd, partitions by topic, the damage found and repaired, retention by topic)."""
    ensure_private_dir(log_dir / "topics")
    ensure_private_dir(log_dir / "groups")
    lock_fd = create_private(log_dir / ".lock", os.O_RDWR)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        os.close(lock_fd)
        raise BackendUnavailable(f"log directory {log_dir} is in use by another FileLog") from exc
    topics: dict[str, list[PartitionFiles]] = {}
    damages: list[Damage] = []
    retention: dict[str, Retention] = {}
    try:
        for meta in sorted((log_dir / "topics").glob("*/meta.json")):
            described = json.loads(meta.read_text())
            count = described["partitions"]
            topic = meta.parent.name
            retention[topic] = Retention.from_meta(described)
            topics[topic] = []
            for partition in range(count):
                files, found = open_partition_sync(meta.parent / str(partition), log_dir=log_dir,
                                                   topic=topic, partition=partition)
                files.tp = TopicPartition(topic, partition)
                topics[topic].append(files)
                damages += found
        damages += _check_committed_sync(log_dir, topics)
        for damage in damages:
            if damage.kind != "torn_tail":
                write_report_sync(log_dir, damage)
    except BaseException:
        for parts in topics.values():
            for files in parts:
                files.close_sync()
        os.close(lock_fd)
        raise
    return lock_fd, topics, damages, retention


def _check_committed_sync(log_dir: Path, topics: dict[str, list[PartitionFiles]]) -> list[Damage]:
    """A group whose committed offset is past the end of the log (its records were cut
    or lost) would skip that many *new* records: the next ones get the offsets it
    believes it has read. Move such offsets back to the end, before anyone produces."""
    damages = []
    for path in group_paths_sync(log_dir / "groups"):
        committed, sequence = load_offsets_sync(path)
        changed = False
        for tp, offset in committed.items():
            parts = topics.get(tp.topic, [])
            if tp.partition >= len(parts) or offset <= parts[tp.partition].next_offset:
                continue
            end = parts[tp.partition].next_offset
            damages.append(Damage(tp.topic, tp.partition, str(path), "committed_past_end", 0, 0, [end, offset]))
            committed[tp] = end
            changed = True
        if changed:
            rewrite_offsets_sync(path, committed, sequence)
    return damages


def close_log_dir_sync(topics: dict[str, list[PartitionFiles]], lock_fd: int | None) -> None:
    for parts in topics.values():
        for files in parts:
            files.close_sync()
    if lock_fd is not None:
        os.close(lock_fd)  # releases the flock


def grow_topic_sync(log_dir: Path, topic_dir: Path, existing: int, partitions: int,
                    retention: Retention) -> list[PartitionFiles]:
    """Open partitions `existing`..`partitions`-1 and write the topic's meta; the new ones."""
    # Partition directories first, meta last: a crash in between leaves the old count.
    added = [open_partition_sync(topic_dir / str(p), log_dir=log_dir, topic=topic_dir.name, partition=p)[0]
             for p in range(existing, partitions)]
    for p, files in enumerate(added, start=existing):
        files.tp = TopicPartition(topic_dir.name, p)
    tmp = topic_dir / "meta.json.tmp"
    write_private(tmp, json.dumps({"partitions": partitions, **retention.to_meta()}).encode())
    os.replace(tmp, topic_dir / "meta.json")
    fsync_dir_sync(topic_dir)
    fsync_dir_sync(topic_dir.parent)
    return added
