"""`flarectl up` with no worker setting runs one gateway worker on 2+ cores; 0 when told."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.infra.base import wait_until

from .flare_process import FlareProcess

pytestmark = pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="the default is 0 workers on one core")


def _worker_children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == pid and "services.wiring.gateway_worker" in cmdline:
            found.append(int(entry))
    return found


def test_up_runs_one_gateway_worker_by_default(tmp_path) -> None:
    with FlareProcess(tmp_path / "flare") as flare:
        assert wait_until(lambda: len(_worker_children(flare.proc.pid)) == 1, timeout=20)
        assert wait_until(lambda: flare.health().get("status") == "ok", timeout=20), flare.health()


def test_workers_0_in_the_environment_keeps_one_process(tmp_path) -> None:
    with FlareProcess(tmp_path / "flare", env={"FLARE_GATEWAY__WORKERS": "0"}) as flare:
        assert wait_until(lambda: flare.health().get("status") == "ok", timeout=20), flare.health()
        assert _worker_children(flare.proc.pid) == []
