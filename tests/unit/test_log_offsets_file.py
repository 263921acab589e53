"""The file log's committed offsets (services/backends/embedded/_logoffsets.py): two slots
rewritten in place, so a torn write falls back to the commit before it."""

from __future__ import annotations

import json

from services.backends.embedded._logoffsets import OffsetsFile, encode_offsets, group_paths_sync, load_offsets_sync
from services.backends.log import TopicPartition

T0, T1 = TopicPartition("flare.messages", 0), TopicPartition("flare.messages", 1)


def _write(path, *commits):
    writer = OffsetsFile(path, load_offsets_sync(path)[1])
    try:
        for committed in commits:
            writer.write_sync(encode_offsets(committed))
    finally:
        writer.close_sync()


def test_the_newest_commit_is_read_back_and_nothing_is_renamed(tmp_path):
    path = tmp_path / "flare-store.json"
    _write(path, {T0: 5}, {T0: 7, T1: 2}, {T0: 9, T1: 3})
    assert load_offsets_sync(path) == ({T0: 9, T1: 3}, 3)
    assert not path.exists()  # only the slots: no temp file, no rename
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flare-store.json.a", "flare-store.json.b"]


def test_a_torn_newest_slot_falls_back_to_the_commit_before(tmp_path):
    path = tmp_path / "g.json"
    _write(path, {T0: 10}, {T0: 20})
    newest = tmp_path / "g.json.a" if load_offsets_sync(path)[1] % 2 == 0 else tmp_path / "g.json.b"
    data = bytearray(newest.read_bytes())
    data[-2] ^= 0xFF  # a byte of the payload lost: the CRC no longer matches
    newest.write_bytes(bytes(data))
    assert load_offsets_sync(path)[0] == {T0: 10}
    newest.write_bytes(newest.read_bytes()[:10])  # cut inside the header
    assert load_offsets_sync(path)[0] == {T0: 10}
    _write(path, {T0: 30})  # the next commit goes to the slot that is not the valid one
    assert load_offsets_sync(path)[0] == {T0: 30}
    _write(path, {T0: 40})
    assert load_offsets_sync(path)[0] == {T0: 40}


def test_a_shorter_commit_over_a_longer_one_ignores_the_old_tail(tmp_path):
    path = tmp_path / "g.json"
    many = {TopicPartition("t", p): 1000 + p for p in range(64)}
    _write(path, many, many, {T0: 1}, {T0: 2})  # both slots once held the long payload
    assert load_offsets_sync(path)[0] == {T0: 2}


def test_a_group_an_older_flare_wrote_is_read_and_moves_to_slots(tmp_path):
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"flare.messages": {"0": 42}}))
    assert load_offsets_sync(path) == ({T0: 42}, 0)
    _write(path, {T0: 43})
    assert load_offsets_sync(path)[0] == {T0: 43}  # the slot wins over the legacy file
    assert group_paths_sync(tmp_path) == [path]


def test_no_offsets_is_an_empty_group(tmp_path):
    assert load_offsets_sync(tmp_path / "none.json") == ({}, 0)
    (tmp_path / "other.txt").write_text("x")
    _write(tmp_path / "a%2Fb.json", {T0: 1})
    assert group_paths_sync(tmp_path) == [tmp_path / "a%2Fb.json"]
