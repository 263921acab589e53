"""Restart loops on one data dir (README: "the data in ./.flare/ survives restarts (and a
kill -9: every message that reached `stored` is kept, with gap-free sequence numbers)";
protocol §6: a resend "also after a server restart ... gets received and stored with the
original msg_id and duplicate: true; the message is stored and delivered once").

Clients send while `flarectl up` is stopped with SIGTERM or SIGKILL, mid-traffic, several
times in a row, once right after a restart (while the store may still be catching up on the
log). The clients follow §6 and resend every unconfirmed message after reconnecting. After
every restart: each message ever acked `stored` is in history exactly once, in seq order,
and an explicit resend of an old stored client_msg_id gets its original msg_id back.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal

import pytest

from .helpers import u
from .live import FlareProcess, Sender, wait_audit

# (signal, stored acks to wait for in this round before it is sent)
ROUNDS = [(signal.SIGKILL, 40), (signal.SIGTERM, 40), (signal.SIGKILL, 3), (signal.SIGKILL, 40),
          (signal.SIGTERM, 20)]


async def _stored_grew(senders: list[Sender], base: dict[str, int], by: int, tasks) -> None:
    while any(len(s.stored) < base[s.user] + by for s in senders):
        failed = [t for t in tasks if t.done()]
        assert not failed, [t.exception() for t in failed]
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("workers", ["default", "0"])
async def test_send_kill_restart_loop_keeps_every_stored_message_once(tmp_path, workers):
    # README: by default a gateway worker process beside the core; `[gateway] workers = 0` one process
    env = {} if workers == "default" else {"FLARE_GATEWAY__WORKERS": workers}
    server = FlareProcess(tmp_path / "flare", env=env).start()
    try:
        key = server.secret
        senders = [Sender(server.url, key, u("ra"), u("rb"), window=16),
                   Sender(server.url, key, u("rc"), u("rd"), window=4)]
        rng = random.Random(7)
        for n, (sig, want) in enumerate(ROUNDS):
            stop = asyncio.Event()
            tasks = [asyncio.create_task(s.run(stop, deadline=60)) for s in senders]
            base = {s.user: len(s.stored) for s in senders}
            await _stored_grew(senders, base, want, tasks)
            os.killpg(server.proc.pid, sig)  # the whole of flarectl up: core and gateway workers
            server.proc.wait(timeout=30)
            if sig == signal.SIGTERM:
                assert server.proc.returncode == 0, "\n".join(server.lines[-30:])
            server.start()
            # the senders reconnect by themselves and resend what was unconfirmed (§6)
            await _stored_grew(senders, {s.user: len(s.stored) for s in senders}, 5, tasks)
            stop.set()
            await asyncio.gather(*tasks)
            assert all(not s.pending and not s.conflicts for s in senders), [s.conflicts for s in senders]
            assert server.health()["status"] == "ok", server.health()
            await wait_audit(server.url, key, senders)

            # old stored messages sent again after the restart: original msg_id, duplicate true
            for s in senders:
                sample = rng.sample(sorted(s.stored), 5)
                await s.resend(sample)
                assert not s.conflicts, f"round {n}: {s.conflicts}"
                assert all(s.duplicates[c] for c in sample), f"round {n}: a resend was not duplicate"
        assert all(s.reconnects >= len(ROUNDS) for s in senders), [s.reconnects for s in senders]
        histories = await wait_audit(server.url, key, senders)
        assert sum(len(h) for h in histories.values()) == sum(len(s.stored) for s in senders)
        bad = [line for line in server.lines if "Traceback" in line]
        assert not bad, "\n".join(bad[:20])
    finally:
        server.stop()
