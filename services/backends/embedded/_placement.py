"""Where a short blocking job runs: on the event loop while such jobs are quick, on its thread
while they are slow. The file log's write jobs and the SQLite writer's transactions use it.

A thread hop costs ~80 µs of CPU on the 2-core VM, and under load much more wall time: the
job's completion has to take the GIL back from a busy loop, one switch interval at a time
for every GIL release in the job. At 580 msg/s a file-log job took 3.8 ms on its thread
against 0.17 ms run on the loop (bench/results/2026-12-07b). A job that really blocks (an
fdatasync or a WAL checkpoint on a slow disk) belongs on the thread, where the loop goes on
meanwhile.

Only a job timed on the loop says what the job itself costs: timed on the thread it also
counts the waits for the GIL, which grow with the load, so thread timings would keep the
jobs on the thread once load arrives although the disk is fast. So the estimate comes from
inline runs alone (the first job, with nothing known yet, runs on the thread and seeds it).
While jobs go to the thread, one job every `probe_s` runs inline to measure again; the
interval doubles up to `max_probe_s` while the probes stay slow, so a disk that stays slow
costs one blocked job a minute.

Inline jobs are timed in wall time, waits for the GIL included: while another thread of the
process runs, each GIL release inside a job (every SQLite step, every write) can cost a
switch interval. That is why `hop_s` is 1 ms: a small SQLite write measured 52 us median,
131 us p99 on tmpfs alone (a WAL checkpoint 1.3 ms), but several times that between other
threads' work, still far below the thread's wait."""

from __future__ import annotations

import time
from collections.abc import Callable

from services.common.metrics import BLOCKING_JOBS

__all__ = ["Placement"]


class Placement:
    __slots__ = ("_on_loop", "_on_thread", "hop_s", "mean_s", "inline_jobs", "probes",
                 "_probe_s", "_max_probe_s", "_every", "_next", "_clock")

    def __init__(self, job: str, *, hop_s: float = 1e-3, probe_s: float = 1.0, max_probe_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """`hop_s`: a job whose recent mean on the loop is below this runs on the loop (it
        blocks the loop that long, against milliseconds of waiting on the thread). `job`:
        its name in `flare_blocking_jobs_total`."""
        self._on_loop = BLOCKING_JOBS.labels(job, "loop")
        self._on_thread = BLOCKING_JOBS.labels(job, "thread")
        self.hop_s = hop_s
        self.mean_s: float | None = None  # recent mean of one job's own time, timed on the loop
        self.inline_jobs = 0
        self.probes = 0
        self._probe_s = probe_s
        self._max_probe_s = max_probe_s
        self._every = probe_s
        self._next = 0.0
        self._clock = clock

    @property
    def inline(self) -> bool:
        """The estimate says the loop (a probe aside)."""
        return self.mean_s is not None and self.mean_s < self.hop_s

    def choose(self) -> bool:
        """True: run the next job on the loop (quick jobs, or a probe is due); False: the thread."""
        if not self.inline:
            # Nothing known yet (the thread's timing seeds the estimate), or slow and no probe due.
            now = self._clock()
            if self.mean_s is None or now < self._next:
                self._on_thread.inc()
                return False
            self._next = now + self._every
            self._every = min(self._every * 2, self._max_probe_s)
            self.probes += 1
        self.inline_jobs += 1
        self._on_loop.inc()
        return True

    def record(self, took_s: float, *, inline: bool) -> None:
        """A job's own time; `inline`: it ran on the loop. From the thread only the first
        job counts (see the module doc)."""
        first, was_inline = self.mean_s is None, self.inline
        if not inline and not first:
            return
        if first or not was_inline:
            self.mean_s = took_s  # the seed, or a probe: a fresh look, not a drift
        else:
            # Clipped at twice the hop: one slow job (a WAL checkpoint, a GIL wait behind
            # another thread) is not a slow disk; three in a row are.
            self.mean_s = 0.8 * self.mean_s + 0.2 * min(took_s, 2 * self.hop_s)
        if self.inline:
            self._every = self._probe_s  # quick again: a later slow spell probes from probe_s anew
        elif first or was_inline:
            self._next = self._clock() + self._every  # just moved to the thread: probe later
