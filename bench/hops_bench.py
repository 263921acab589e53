"""What the small per-batch costs of the monolith's core are on this machine: a thread hop,
fdatasyncs in a row or in parallel, and one push across the worker channel.

    python bench/hops_bench.py [--dir DIR ...] [--files 5] [--rounds 200]

Prints one JSON object. The numbers behind two choices in the code:
- services/backends/embedded/_logwriter.Syncs runs a write job's fdatasyncs in a row while
  one takes less than a thread hop, in parallel on a pool when slower (`hop` vs `fdatasync`
  per directory: tmpfs and a VM's disk differ by a factor of 30 or more);
- services/wiring/gateway_workers.WorkerGatewayClient sends pushes as plain tuples
  (`push_pickle`: a NamedTuple costs several times more to pickle and unpickle).
A benchmark, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pickle
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.delivery.seam import Push  # noqa: E402


def _noop() -> int:
    return 1


async def _hops(rounds: int) -> dict:
    """One run_in_executor round trip from the event loop: wall and CPU (all threads)."""
    loop = asyncio.get_running_loop()
    pool = ThreadPoolExecutor(max_workers=8)
    try:
        for _ in range(50):  # threads started, caches warm
            await loop.run_in_executor(pool, _noop)
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(rounds):
            await loop.run_in_executor(pool, _noop)
        return {"wall_us": round((time.perf_counter() - wall) / rounds * 1e6, 1),
                "cpu_us": round((time.process_time() - cpu) / rounds * 1e6, 1)}
    finally:
        pool.shutdown()


def _syncs(directory: Path, files: int, rounds: int) -> dict:
    """`files` appends of 1.5 KB, then their fdatasyncs in a row or on a pool, per round."""
    work = Path(tempfile.mkdtemp(prefix="flare-hops-", dir=directory))
    pool = ThreadPoolExecutor(max_workers=files)
    fds = [os.open(work / f"p{i}", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600) for i in range(files)]
    out: dict[str, dict] = {}
    try:
        for mode in ("in_a_row", "parallel"):
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(rounds):
                for fd in fds:
                    os.write(fd, b"x" * 1500)
                if mode == "in_a_row":
                    for fd in fds:
                        os.fdatasync(fd)
                else:
                    list(pool.map(os.fdatasync, fds))
            out[mode] = {"wall_us": round((time.perf_counter() - wall) / rounds * 1e6, 1),
                         "cpu_us": round((time.process_time() - cpu) / rounds * 1e6, 1)}
        started = time.perf_counter()
        for _ in range(rounds):
            os.write(fds[0], b"x" * 1500)
            os.fdatasync(fds[0])
        out["one_fdatasync_us"] = round((time.perf_counter() - started) / rounds * 1e6, 1)
    finally:
        for fd in fds:
            os.close(fd)
        for i in range(files):
            (work / f"p{i}").unlink()
        work.rmdir()
        pool.shutdown()
    return out


def _push_pickle(count: int = 1000, rounds: int = 200) -> dict:
    """dumps + loads of one batch of pushes, per push, as the channel sends them."""
    frames = [b'{"type":"message","seq":%d,"body":"%s"}' % (i, b"x" * 200) for i in range(50)]
    named = [Push(f"gw-1-w0/{i:016x}", f"c2c:u{i % 50}:u{i % 37}", i + 1, frames[i % 50]) for i in range(count)]
    plain = [tuple(p) for p in named]
    out = {}
    for label, batch in (("namedtuple_us", named), ("tuple_us", plain)):
        started = time.process_time()
        for _ in range(rounds):
            pickle.loads(pickle.dumps([batch], protocol=pickle.HIGHEST_PROTOCOL))
        out[label] = round((time.process_time() - started) / rounds / count * 1e6, 3)
    started = time.process_time()
    for _ in range(rounds):
        [tuple(p) for p in named]
    out["to_tuple_us"] = round((time.process_time() - started) / rounds / count * 1e6, 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, action="append", default=None,
                        help="a directory to time fdatasyncs in (repeatable; default: the temp dir and /dev/shm)")
    parser.add_argument("--files", type=int, default=5, help="partitions written per job")
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    dirs = args.dir or [Path(tempfile.gettempdir())] + ([Path("/dev/shm")] if Path("/dev/shm").is_dir() else [])
    try:
        import uvloop
        hops = uvloop.run(_hops(args.rounds * 10))
    except ImportError:  # pragma: no cover
        hops = asyncio.run(_hops(args.rounds * 10))
    print(json.dumps({
        "bench": "hops", "command": " ".join(["python", *sys.argv]),
        "thread_hop": hops,
        "fdatasync": {str(d): _syncs(d, args.files, args.rounds) for d in dirs},
        "files_per_job": args.files,
        "push_pickle": _push_pickle(),
    }, indent=2))


if __name__ == "__main__":
    main()
