"""Issue 10 item 10: what `flarectl up` writes is readable by its owner only.

A real monolith starts in a fresh data dir under umask 0 (the most permissive a process
can have), stores a message and stops; then every directory Flare made must be 0700 and
every file 0600 — the secrets, messages.db and its WAL, log segments, offsets, agent state.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from services.common.config import load_config
from services.common.model import c2c_conversation_id
from services.wiring.monolith import Monolith

from .wsclient import WsClient


def _modes(root: Path) -> dict[str, str]:
    """Relative path -> "dir 0o700" / "file 0o600" for everything under root (and root)."""
    modes = {}
    for path in [root, *root.rglob("*")]:
        info = path.lstat()
        kind = "dir" if stat.S_ISDIR(info.st_mode) else "file" if stat.S_ISREG(info.st_mode) else "other"
        modes[str(path.relative_to(root))] = f"{kind} {oct(stat.S_IMODE(info.st_mode))}"
    return modes


async def test_data_dir_is_0700_and_every_file_0600_whatever_the_umask(tmp_path):
    data_dir = tmp_path / "flare"
    cfg = load_config(environ={}, data_dir=data_dir)
    cfg.gateway.port = cfg.admin.port = cfg.controlplane.port = 0
    previous = os.umask(0)
    try:
        monolith = Monolith(cfg)
        await monolith.start()
        clients = []
        try:
            alice = WsClient(monolith.gateway_url, monolith.token_secret, "alice", "phone")
            bob = WsClient(monolith.gateway_url, monolith.token_secret, "bob", "phone")
            for client in (alice, bob):
                await client.connect()
                clients.append(client)
            await alice.send("private", conversation_id=c2c_conversation_id("alice", "bob"))
            await bob.wait_for(lambda f: f.get("type") == "message")
            assert await monolith.db.count_messages(c2c_conversation_id("alice", "bob")) == 1
            modes_running = _modes(data_dir)  # SQLite's -wal and -shm exist while it runs
        finally:
            for client in clients:
                await client.close()
            await monolith.stop()
    finally:
        os.umask(previous)
    modes = {**modes_running, **_modes(data_dir)}
    for name in ("token.secret", "admin.token", "messages.db", "messages.db-wal", "config.db"):
        assert name in modes, sorted(modes)
    assert any(name.startswith("log/topics/") and name.endswith(".log") for name in modes), sorted(modes)
    assert modes["."] == "dir 0o700"
    assert {name: mode for name, mode in modes.items() if mode not in ("dir 0o700", "file 0o600")} == {}
