"""`flarectl up` runs one gateway worker on a machine with 2+ cores unless told otherwise."""

from __future__ import annotations

import os

import pytest

from services.wiring import gateway_workers
from services.wiring.gateway_workers import default_worker_count


@pytest.mark.parametrize(("cores", "expected"), [({0}, 0), ({0, 1}, 1), (set(range(16)), 1)])
def test_one_worker_from_two_cores_on(monkeypatch, cores, expected) -> None:
    monkeypatch.setattr(gateway_workers.os, "sched_getaffinity", lambda pid: cores, raising=False)
    assert default_worker_count() == expected


def test_without_affinity_it_counts_the_cpus(monkeypatch) -> None:
    def unsupported(pid):
        raise OSError("not here")

    monkeypatch.setattr(gateway_workers.os, "sched_getaffinity", unsupported, raising=False)
    monkeypatch.setattr(gateway_workers.os, "cpu_count", lambda: 1)
    assert default_worker_count() == 0


def test_the_config_file_and_the_environment_win_over_the_default(tmp_path, monkeypatch) -> None:
    from services.common.config import load_config

    assert "workers" not in load_config(None, data_dir=tmp_path).gateway.model_fields_set
    (tmp_path / "one.toml").write_text("[gateway]\nworkers = 0\n")
    assert "workers" in load_config(tmp_path / "one.toml", data_dir=tmp_path).gateway.model_fields_set
    monkeypatch.setenv("FLARE_GATEWAY__WORKERS", "0")
    assert "workers" in load_config(None, data_dir=tmp_path).gateway.model_fields_set
    assert os.environ["FLARE_GATEWAY__WORKERS"] == "0"
