"""Faults under load in the split deployment, on real servers, checked by real clients.

Each test runs a bounded chat load (tests/integration/split_load.py: 6 users on 2
gateways, every send resent until STORED), breaks something mid-run, lets it recover,
and then checks from fresh devices: nothing that reached STORED is lost, seq is gap-free
per conversation, and no device got a message pushed twice.

Servers that a test stops or restarts are its own (private_server); kill -9 of Flare
instances happens on the shared servers.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.infra.base import metrics_text

from .split_harness import SERVER_KINDS, split_on
from .split_load import ChatLoad

pytestmark = [pytest.mark.servers, pytest.mark.slow]


def _counters(split) -> dict[str, list[str]]:
    """Retry and dedup counters of every instance, to explain a failure."""
    found = {}
    for process in split.deployment.processes:
        text = metrics_text(process.ports["admin"], timeout=2) if "admin" in process.ports else None
        if text is None:
            continue
        found[process.instance_id] = [line for line in text.splitlines() if line.startswith(
            ("flare_retries_total", "flare_dedup_hits_total", "flare_delivery_failures_total"))]
    return found


def _servers(request, **private) -> dict:
    servers = {kind: request.getfixturevalue(f"{kind}_server") for kind in SERVER_KINDS if kind not in private}
    return {**servers, **private}


async def _load_with_fault(split, fault, *, duration_s: float = 8.0, fault_at_s: float = 2.0) -> ChatLoad:
    load = ChatLoad(split.deployment.gateway_urls, split.deployment.secret)
    await load.connect()
    try:
        async def inject() -> None:
            await asyncio.sleep(fault_at_s)
            await fault()

        await asyncio.gather(load.run(duration_s=duration_s), inject())
        try:
            report = await load.verify()
        except AssertionError as exc:
            raise AssertionError(f"{exc}\ncounters: {await asyncio.to_thread(_counters, split)}") from None
        print(report.summary())  # visible with -s: how much the fault disturbed the clients
        assert len(report.stored) > 50, report.summary()
        return load
    finally:
        await load.close()


async def test_kill_9_of_a_store_and_a_router_loses_nothing(request, tmp_path):
    async with split_on(tmp_path, _servers(request)) as split:
        async def fault() -> None:
            await asyncio.to_thread(split.deployment.kill, "store-1")
            await asyncio.sleep(1.0)
            await asyncio.to_thread(split.deployment.kill, "router-1")

        load = await _load_with_fault(split, fault)
        # The survivor took over store-1's partitions (Kafka group rebalance).
        assert sum(len(m) for m in load.report.synced.values()) == await split.db.count_messages()


async def test_kafka_broker_restart_mid_run_loses_nothing_acked(request, tmp_path, private_server):
    kafka = private_server("kafka")
    async with split_on(tmp_path, _servers(request, kafka=kafka)) as split:
        async def fault() -> None:
            await asyncio.to_thread(kafka.restart)

        load = await _load_with_fault(split, fault, duration_s=12.0)
        assert load.report.stored


@pytest.mark.parametrize("how", ["flushall", "restart"])
async def test_redis_flushed_or_restarted_mid_run_reuses_or_skips_no_seq(request, tmp_path, private_server, how):
    redis = private_server("redis")
    async with split_on(tmp_path, _servers(request, redis=redis)) as split:
        async def fault() -> None:
            if how == "flushall":
                await asyncio.to_thread(redis.redis_cli, "FLUSHALL")
            else:
                await asyncio.to_thread(redis.restart)

        await _load_with_fault(split, fault)


async def test_postgres_down_10s_store_holds_offsets_and_catches_up(request, tmp_path, private_server):
    postgres = private_server("postgres")
    async with split_on(tmp_path, _servers(request, postgres=postgres)) as split:
        async def fault() -> None:
            await asyncio.to_thread(postgres.stop)
            await asyncio.sleep(10.0)
            await asyncio.to_thread(postgres.start)

        load = await _load_with_fault(split, fault, duration_s=14.0)
        assert sum(len(m) for m in load.report.synced.values()) == await split.db.count_messages()
