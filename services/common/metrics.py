"""Prometheus metrics shared by the message path, and the admin HTTP endpoint.

Every Flare process serves `/metrics` (Prometheus text format) and `/healthz` (JSON) on its
admin port, through `AdminServer` (services.common.adminhttp: bounded against slow clients).
"""

from __future__ import annotations

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import Metric

from .adminhttp import AdminServer

__all__ = [
    "CONNECTIONS",
    "MESSAGES_IN",
    "MESSAGES_OUT",
    "ACK_LATENCY",
    "DEDUP_HITS",
    "RETRIES",
    "LOG_LAG",
    "DELIVERY_FAILURES",
    "SENDS_SHED",
    "LOOP_LAG",
    "STORE_BATCH",
    "GRPC_BATCH",
    "LOG_WRITE",
    "BLOCKING_JOBS",
    "FRAME_ERRORS",
    "ACK_RECEIVED",
    "ACK_STORED",
    "ACK_DELIVERED",
    "MESSAGES_IN_TEXT",
    "AdminServer",
    "metric_snapshot",
    "merged_exposition",
    "LATENCY_BUCKETS",
]

LATENCY_BUCKETS = _LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)

CONNECTIONS = Gauge("flare_connections", "Open client WebSocket connections")
MESSAGES_IN = Counter("flare_messages_in_total", "Messages accepted from clients", ["content_type"])
MESSAGES_OUT = Counter("flare_messages_out_total", "Message frames pushed to devices")
ACK_LATENCY = Histogram(
    "flare_ack_latency_seconds", "Time from the gateway receiving a message to each ack level",
    ["level"], buckets=_LATENCY_BUCKETS,
)
DEDUP_HITS = Counter("flare_dedup_hits_total", "Resent messages recognised by client_msg_id", ["path"])
RETRIES = Counter("flare_retries_total", "Retried operations", ["operation"])
LOG_LAG = Gauge("flare_log_lag_records", "Records appended to the message log but not yet stored", ["partition"])
DELIVERY_FAILURES = Counter("flare_delivery_failures_total", "Deliveries that could not reach a device", ["reason"])
LOOP_LAG = Gauge("flare_event_loop_lag_seconds", "How late this process's event loop runs a 25 ms timer (smoothed)")
SENDS_SHED = Counter("flare_sends_shed_total", "Sends answered `busy` under overload, by what was behind", ["cause"])
LOG_WRITE = Histogram(
    "flare_log_write_seconds",
    "One append job of the embedded file log: its writes and (fsync=batch) fdatasyncs; the disk's "
    "share of every send->stored latency",
    buckets=_LATENCY_BUCKETS,
)
STORE_BATCH = Histogram(
    "flare_store_batch_size", "Messages per store-consumer batch",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000),
)
GRPC_BATCH = Histogram(
    "flare_grpc_batch_size", "Messages per batch RPC a gRPC client sent (services/common/grpc_batch.py)",
    ["rpc"], buckets=(1, 2, 5, 10, 20, 50, 100, 256),
)
STAGE = Histogram(
    "flare_stage_seconds",
    "One stage of a send, seen from the process that awaits it: admit, filter, accept (router); "
    "reserve, produce, mark_stored (store); persist, commit, deliver (one store-consumer batch). "
    "Where send->stored time goes, hop by hop",
    ["stage"], buckets=_LATENCY_BUCKETS,
)
REDIS_PIPELINE = Histogram(
    "flare_redis_pipeline_size", "Single-key commands per round trip to Redis (concurrent callers share one)",
    buckets=(1, 2, 5, 10, 20, 50, 100, 256),
)
BLOCKING_JOBS = Counter(
    "flare_blocking_jobs_total",
    "Short blocking jobs of the embedded backends (file-log appends, small SQLite writes) by where "
    "they ran: `loop` while measured quick, `thread` while slow or not yet measured",
    ["job", "place"],
)
FRAME_ERRORS = Counter("flare_frame_errors_total", "Client frames answered with an error", ["code"])


# Label children bound once: `labels()` is a dict lookup under a lock, and these three
# run several times per message.
ACK_RECEIVED = ACK_LATENCY.labels("received")
ACK_STORED = ACK_LATENCY.labels("stored")
ACK_DELIVERED = ACK_LATENCY.labels("delivered")
STAGE_ADMIT = STAGE.labels("admit")
STAGE_FILTER = STAGE.labels("filter")
STAGE_ACCEPT = STAGE.labels("accept")
STAGE_RESERVE = STAGE.labels("reserve")
STAGE_PRODUCE = STAGE.labels("produce")
STAGE_MARK_STORED = STAGE.labels("mark_stored")
STAGE_PERSIST = STAGE.labels("persist")
STAGE_COMMIT = STAGE.labels("commit")
STAGE_DELIVER = STAGE.labels("deliver")
MESSAGES_IN_TEXT = MESSAGES_IN.labels("text")


def metric_snapshot() -> list[list]:
    """This process's Flare metrics as plain data (for another process's /metrics): per
    family [name, type, documentation, unit, [[sample name, labels, value], ...]]. The
    interpreter's own (process_*, python_*) stay out: they do not add up across processes."""
    return [
        [family.name, family.type, family.documentation, family.unit,
         [[s.name, s.labels, s.value] for s in family.samples if not s.name.endswith("_created")]]
        for family in REGISTRY.collect() if family.samples and family.name.startswith("flare_")
    ]


def merged_exposition(others: list[list[list]]) -> bytes:
    """The /metrics text of this process with other processes' snapshots added in."""
    return generate_latest(_Merged(others)) if others else generate_latest()


class _Merged:
    """This process's registry plus other processes' snapshots, samples of the same name and
    labels added up (counters, histogram buckets and gauges such as connections all sum)."""

    def __init__(self, others: list[list[list]]) -> None:
        self._others = others

    def collect(self):
        families: dict[str, Metric] = {}
        values: dict[str, dict[tuple, float]] = {}

        def add(name: str, kind: str, doc: str, unit: str, samples) -> None:
            if name not in families:
                families[name] = Metric(name, doc, kind, unit)
                values[name] = {}
            for sample_name, labels, value in samples:
                key = (sample_name, tuple(sorted(labels.items())))
                values[name][key] = values[name].get(key, 0.0) + value

        for family in REGISTRY.collect():
            add(family.name, family.type, family.documentation, family.unit,
                [(s.name, s.labels, s.value) for s in family.samples if not s.name.endswith("_created")])
        for snapshot in self._others:
            for name, kind, doc, unit, samples in snapshot:
                add(name, kind, doc, unit, samples)
        for name, family in families.items():
            for (sample_name, labels), value in values[name].items():
                family.add_sample(sample_name, dict(labels), value)
            yield family
