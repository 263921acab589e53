"""Placement: blocking jobs on the loop while quick, on the thread while slow, and probes that
find out when a slow spell is over (services/backends/embedded/_placement.py)."""

from __future__ import annotations

from services.backends.embedded._placement import Placement


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_first_job_goes_to_the_thread_and_seeds_the_estimate():
    place = Placement("test", hop_s=0.001, clock=Clock())
    assert not place.choose()
    place.record(0.0002, inline=False)
    assert place.choose() and place.inline_jobs == 1


def test_thread_timings_inflated_by_gil_waits_do_not_keep_jobs_on_the_thread():
    clock = Clock()
    place = Placement("test", hop_s=0.001, probe_s=1.0, clock=clock)
    place.record(0.005, inline=False)  # the seed: slow (a loaded loop, or a slow disk)
    assert not place.choose()
    for _ in range(50):  # thread timings stay slow under load: they are not the job's cost
        place.record(0.004, inline=False)
    assert not place.choose()  # within the probe interval
    clock.now += 1.0
    assert place.choose() and place.probes == 1  # the probe runs on the loop
    place.record(0.0001, inline=True)  # and finds the job quick
    assert place.inline and place.choose()


def test_probes_back_off_while_the_disk_stays_slow_and_reset_once_quick():
    clock = Clock()
    place = Placement("test", hop_s=0.001, probe_s=1.0, max_probe_s=4.0, clock=clock)
    place.record(0.01, inline=False)
    due = []
    for _ in range(40):  # 20 s in 0.5 s steps, every probe slow
        clock.now += 0.5
        if place.choose():
            due.append(clock.now - 100.0)
            place.record(0.01, inline=True)
    gaps = [b - a for a, b in zip(due, due[1:])]
    assert gaps[:3] == [1.0, 2.0, 4.0] and max(gaps) == 4.0  # doubling, capped
    clock.now += 4.0
    assert place.choose()
    place.record(0.0001, inline=True)  # quick again
    for _ in range(3):  # then a slow spell: three jobs far over the hop
        place.record(0.01, inline=True)
    assert not place.inline
    clock.now += 1.0
    assert place.choose()  # probed again after probe_s, not after the old 4 s


def test_one_slow_job_among_quick_ones_is_a_spike_three_are_a_slow_disk():
    place = Placement("test", hop_s=0.001, clock=Clock())
    place.record(0.0001, inline=False)
    for _ in range(10):
        assert place.choose()
        place.record(0.0001, inline=True)
    place.record(0.05, inline=True)  # a WAL checkpoint, say: clipped, so the jobs stay put
    assert place.inline
    place.record(0.0001, inline=True)
    for _ in range(3):
        place.record(0.05, inline=True)
    assert not place.choose()
