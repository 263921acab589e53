"""A second process on the data dir of a running `flarectl up` (README: flarectl, "The message
database", Replay): every documented command that reads the embedded data dir is run against
it while clients send, then the clients keep sending. Nothing acked `stored` may be lost, the
node stays `ok` on /healthz, and each conversation's history is complete, in seq order and
once per client_msg_id: right away and after a restart of `flarectl up`.

A second `flarectl up` on the same data dir must refuse, say why, and leave the first alone.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time

from .helpers import u
from .live import FlareProcess, Sender, flarectl, wait_audit

WINDOW = "--since", "2026-01-01T00:00:00Z", "--until", "2099-01-01T00:00:00Z"


def _commands(data_dir: str) -> list[tuple[str, ...]]:
    """Each documented command that reads the embedded data dir (README tables and examples)."""
    d = ("--data-dir", data_dir)
    return [
        ("check", "consistency", *d, "-o", "json"),  # writes its findings to the ConfigStore (default --report)
        ("check", "consistency", *d, "--since", "7d", "--no-report", "-o", "json"),
        ("migrate", "status", *d, "-o", "json"),
        ("migrate", "plan", *d),
        ("migrate", "validate", *d),
        ("archive", "plan", *d, "--older-than", "30d", "-o", "json"),
        ("archive", "list", *d, "-o", "json"),
        ("archive", "verify", "--all", *d, "-o", "json"),
        ("archive", "run", "--older-than", "30d", "--dry-run", *d, "-o", "json"),
        ("replay", *WINDOW, "--into", "store", "--dry-run", *d, "-o", "json"),
        ("token", "issue", "auditor", "--data-dir", data_dir),
        ("playbook", "history"),
    ]


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def _run_commands(server: FlareProcess, *, parallel: bool = False) -> list[str]:
    """Run every command once, each in its own process (one after the other, or all at once as
    several operators or cron jobs might); return what broke a documented promise."""
    broken: list[str] = []
    env = {"FLARE_DATA_DIR": str(server.data_dir)}
    commands = _commands(str(server.data_dir))
    if parallel:
        results = await asyncio.gather(*(asyncio.to_thread(flarectl, *args, env=env) for args in commands))
    for i, args in enumerate(commands):
        r = results[i] if parallel else await asyncio.to_thread(flarectl, *args, env=env)
        out = (r.stdout + r.stderr).strip()
        if args[0] == "replay":
            # README Replay: "The embedded file log is held by one process: stop flarectl up
            # first." Refusing is right; it must say so and exit 4 (backend not reachable).
            if r.returncode == 0:
                continue  # a dry run that could read the log is fine too
            if r.returncode != 4 or "flarectl up" not in out:
                broken.append(f"replay --dry-run: exit {r.returncode}: {out[-300:]}")
            continue
        if args[:2] == ("check", "consistency"):
            # exit 1 means findings; on a live node with nothing lost there must be none
            if r.returncode != 0:
                broken.append(f"{' '.join(args[:2])}: exit {r.returncode}: {out[-600:]}")
            else:
                report = json.loads(r.stdout)
                if not report["ok"] or report["findings"]:
                    broken.append(f"check consistency found {report['findings'][:5]}")
            continue
        if r.returncode != 0:
            broken.append(f"{' '.join(args[:2])}: exit {r.returncode}: {out[-300:]}")
        health = server.health()
        if health["status"] != "ok":
            broken.append(f"after {' '.join(args[:2])}: /healthz {health}")
    return broken


async def _progress(senders: list[Sender], before: dict[str, int], *, more: int, within: float) -> bool:
    """Whether every sender got more than `more` new `stored` acks within `within` seconds."""
    end = time.monotonic() + within
    while time.monotonic() < end:
        if all(len(s.stored) > before[s.user] + more for s in senders):
            return True
        await asyncio.sleep(0.1)
    return False


async def test_documented_commands_beside_a_live_node_lose_nothing(tmp_path):
    server = FlareProcess(tmp_path / "flare").start()
    try:
        key = server.secret
        senders = [Sender(server.url, key, u("sa"), u("sb")), Sender(server.url, key, u("sc"), u("sd"))]
        stop = asyncio.Event()
        # The senders run until told to stop: 24 commands take a minute and more on a loaded
        # machine, and a sender past its deadline would stop sending and look like a stall.
        tasks = [asyncio.create_task(s.run(stop, deadline=900)) for s in senders]
        while min(len(s.stored) for s in senders) < 40:  # history worth reading first
            await asyncio.sleep(0.1)
            assert not any(t.done() for t in tasks), [t.exception() for t in tasks if t.done()]

        started = time.monotonic()
        broken = await _run_commands(server)
        broken += await _run_commands(server, parallel=True)
        took = time.monotonic() - started
        # and the clients keep sending on the same data dir: each gets more than 10 more stored
        before = {s.user: len(s.stored) for s in senders}
        progressed = await _progress(senders, before, more=10, within=30.0)
        assert not any(t.done() for t in tasks), [t.exception() for t in tasks if t.done()]
        stop.set()
        await asyncio.gather(*tasks)
        assert progressed, (f"sending stalled after the commands ({took:.0f} s): stored before "
                            f"{before}, 30 s later {({s.user: len(s.stored) for s in senders})}, "
                            f"/healthz {server.health()}\n" + "\n".join(server.lines[-20:]))
        assert not broken, "\n".join(broken)
        assert server.health()["status"] == "ok", server.health()
        assert all(not s.pending and not s.conflicts for s in senders)
        await wait_audit(server.url, key, senders)

        # What a second process broke in the database shows after a crash: SIGKILL, restart
        server.kill()
        server.start()
        assert server.health()["status"] == "ok", server.health()
        histories = await wait_audit(server.url, key, senders)
        assert sum(len(h) for h in histories.values()) == sum(len(s.stored) for s in senders)
        assert not (broken := await _run_commands(server)), "\n".join(broken)
        server.stop()
        assert server.proc.returncode == 0, "\n".join(server.lines[-30:])
        server.start()
        assert server.health()["status"] == "ok", server.health()
        histories = await wait_audit(server.url, key, senders)
        assert sum(len(h) for h in histories.values()) == sum(len(s.stored) for s in senders)
        # and the restarted node still takes messages on that data dir
        for s in senders:
            await s.run(asyncio.Event(), count=16)
        await wait_audit(server.url, key, senders)
        bad = [line for line in server.lines if '"level":"error"' in line or "Traceback" in line]
        assert not bad, "\n".join(bad[:20])
    finally:
        server.stop()


async def test_a_second_flarectl_up_on_the_same_data_dir_refuses_and_leaves_the_first_alone(tmp_path):
    server = FlareProcess(tmp_path / "flare").start()
    try:
        key = server.secret
        secrets = {name: _digest(server.data_dir / name) for name in ("token.secret", "admin.token")}
        senders = [Sender(server.url, key, u("qa"), u("qb"))]
        stop = asyncio.Event()
        tasks = [asyncio.create_task(s.run(stop, deadline=90)) for s in senders]
        while len(senders[0].stored) < 30:
            await asyncio.sleep(0.1)

        second = FlareProcess(server.data_dir)  # other ports: only the data dir is shared
        started = time.monotonic()
        try:
            second.start(timeout=30)
            came_up = True
        except RuntimeError:
            came_up = False
        finally:
            second.kill()
        out = "\n".join(second.lines)
        assert not came_up, f"a second flarectl up on {server.data_dir} came up:\n{out[-2000:]}"
        assert second.proc.returncode not in (0, None), out
        assert "in use" in out.lower() or "already" in out.lower() or "lock" in out.lower(), out[-2000:]
        assert time.monotonic() - started < 30

        before = len(senders[0].stored)
        await asyncio.sleep(2.0)
        stop.set()
        await asyncio.gather(*tasks)
        assert len(senders[0].stored) > before + 10, "the first node stopped taking messages"
        assert server.health()["status"] == "ok", server.health()
        assert {name: _digest(server.data_dir / name) for name in secrets} == secrets, "the refused up rewrote a secret"
        await wait_audit(server.url, key, senders)
        server.stop()
        server.start()
        await wait_audit(server.url, key, senders)
    finally:
        server.stop()


async def test_archive_run_beside_a_live_node_keeps_history_and_duplicate_detection(tmp_path):
    """README, The message database: archived rows become Parquet chunks and leave L1; "Their
    keys stay in L1, so seq allocation and duplicate detection still cover them. Sync reads
    archived history transparently." Protocol §6: a resend, also after a restart, gets the
    original msg_id and duplicate true, and the message is stored once."""
    policy = tmp_path / "tiering.yaml"  # archive anything older than 1 s; L1 kept over the log's 24 h
    policy.write_text("kind: tiering\nspec:\n  l1_retention: 2d\n  hot_cold_threshold: 1s\n")
    server = FlareProcess(tmp_path / "flare").start()
    try:
        key, d = server.secret, str(server.data_dir)
        senders = [Sender(server.url, key, u("va"), u("vb")), Sender(server.url, key, u("vc"), u("vd"))]
        for s in senders:
            await s.run(asyncio.Event(), count=60)
        old = {s.user: list(s.stored)[:30] for s in senders}  # sent before the cutoff below
        await asyncio.sleep(3.0)
        stop = asyncio.Event()
        tasks = [asyncio.create_task(s.run(stop, deadline=60)) for s in senders]
        r = await asyncio.to_thread(flarectl, "archive", "run", "--older-than", "2s", "--policy", str(policy),
                                    "--data-dir", d, "-o", "json")
        assert r.returncode == 0, r.stdout + r.stderr
        assert json.loads(r.stdout)["rows_archived"] >= 60, r.stdout
        await asyncio.sleep(1.0)
        stop.set()
        await asyncio.gather(*tasks)
        assert server.health()["status"] == "ok", server.health()
        await wait_audit(server.url, key, senders)  # L1 and L2 read as one history
        for args in (("archive", "verify", "--all"), ("check", "consistency", "--no-report")):
            r = await asyncio.to_thread(flarectl, *args, "--policy", str(policy), "--data-dir", d, "-o", "json")
            assert r.returncode == 0, r.stdout + r.stderr

        server.stop()
        server.start()
        broken: list[str] = []
        for s in senders:
            await s.resend(old[s.user][:10])
            if s.conflicts:
                broken.append(f"{s.user}: archived client_msg_ids acked with a new msg_id: {s.conflicts[:2]}")
            if not all(s.duplicates[c] for c in old[s.user][:10]):
                broken.append(f"{s.user}: a resend of an archived message was not duplicate")
        # everyone else, in fresh conversations, must still be stored and delivered
        bystanders = [Sender(server.url, key, u("by"), u("bz")) for _ in range(4)]
        for b in bystanders:
            await b.run(asyncio.Event(), count=5)
        try:
            await wait_audit(server.url, key, bystanders, timeout=10)
        except AssertionError as exc:
            broken.append(f"other conversations after the resends: {str(exc)[:400]}")
        if server.health()["status"] != "ok":
            broken.append(f"/healthz: {server.health()}")
        failed = [line[:300] for line in server.lines if "store batch failed" in line]
        if failed:
            broken.append(f"{len(failed)} x {failed[0]}")
        assert not broken, "\n".join(broken)
    finally:
        server.stop()


async def test_two_flarectl_up_racing_on_a_fresh_data_dir_leave_one_working_node(tmp_path):
    """Both start at once on a data dir that does not exist yet (a double-clicked script): one
    comes up, the other refuses; the secrets on disk are the survivor's (its tokens work)."""
    data_dir = tmp_path / "flare"
    nodes = [FlareProcess(data_dir), FlareProcess(data_dir)]

    def start(node: FlareProcess) -> bool:
        try:
            node.start(timeout=40)
            return True
        except RuntimeError:
            return False

    try:
        up = await asyncio.gather(*(asyncio.to_thread(start, n) for n in nodes))
        assert sorted(up) == [False, True], up
        winner, loser = (nodes[0], nodes[1]) if up[0] else (nodes[1], nodes[0])
        out = "\n".join(loser.lines)
        assert loser.proc.returncode not in (0, None) and "in use" in out.lower(), out[-1500:]
        sender = Sender(winner.url, winner.secret, u("wa"), u("wb"))  # a token from token.secret as it is now
        await sender.run(asyncio.Event(), count=10, deadline=20)
        await wait_audit(winner.url, winner.secret, [sender])
        env = {"FLARE_CONTROLPLANE": f"127.0.0.1:{winner.controlplane_port}",
               "FLARE_TOKEN": (data_dir / "admin.token").read_text().strip()}
        r = await asyncio.to_thread(flarectl, "status", "-o", "json", env=env)
        assert r.returncode == 0, r.stdout + r.stderr
        assert winner.health()["status"] == "ok", winner.health()
    finally:
        for n in nodes:
            n.stop()
