"""Gateway workers share the gateway's outbound byte budget instead of each taking all of it."""

from __future__ import annotations

from services.common.config import GatewayConfig
from services.wiring.gateway_workers import GatewayWorkers


def _settings(count: int, total: int) -> list[dict]:
    workers = GatewayWorkers(count=count, config=GatewayConfig(outbound_total_bytes=total), gateway_id="gw-1",
                             node_id=1, token_secret=b"s" * 32, recall_window_s=120, sync_page_limit=200)
    return [workers._core_target(worker).worker_settings() for worker in workers._workers]


def test_each_of_n_workers_gets_a_nth_of_the_outbound_budget() -> None:
    settings = _settings(4, 128 << 20)
    budgets = [s["config"].outbound_total_bytes for s in settings]
    assert budgets == [32 << 20] * 4
    assert sum(budgets) <= 128 << 20
    assert len({s["node_id"] for s in settings}) == 4  # and each still mints its own ids


def test_one_worker_keeps_the_whole_budget() -> None:
    assert _settings(1, 64 << 20)[0]["config"].outbound_total_bytes == 64 << 20
