"""SplitDeployment's start waits: for each instance until it is ready, with a deadline that
names the instances still waiting (services/wiring/split.py `_wait_for_each`)."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from services.common.errors import FlareError
from services.wiring.split import _wait_for_each


def _instances(*names: str) -> list:
    return [SimpleNamespace(instance_id=name, log="/nonexistent.log") for name in names]


def test_waits_until_every_instance_is_ready_asking_each_until_it_is() -> None:
    asked: dict[str, int] = {}

    def ready(process) -> bool:
        asked[process.instance_id] = asked.get(process.instance_id, 0) + 1
        return process.instance_id == "router-1" or asked[process.instance_id] >= 3

    _wait_for_each(_instances("router-1", "store-1"), ready, time.monotonic() + 5, "never", interval=0.01)
    assert asked == {"router-1": 1, "store-1": 3}  # a ready instance is not asked again


def test_the_deadline_names_the_instances_still_waiting() -> None:
    with pytest.raises(FlareError, match="not connected: store-1, sync-1$"):
        _wait_for_each(_instances("router-1", "store-1", "sync-1"), lambda p: p.instance_id == "router-1",
                       time.monotonic() + 0.05, "not connected", interval=0.01)


def test_an_instance_that_died_ends_the_wait_at_once() -> None:
    def ready(process) -> bool:
        raise FlareError(f"{process.instance_id} exited with 1 during start")

    with pytest.raises(FlareError, match="gateway-1 exited"):  # not the deadline's "never: gateway-1"
        _wait_for_each(_instances("gateway-1"), ready, time.monotonic() + 30, "never", interval=0.01)
