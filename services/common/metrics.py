"""Prometheus metrics shared by the message path, and the admin HTTP endpoint.

Every Flare process serves `/metrics` (Prometheus text format) and `/healthz` (JSON) on its
admin port, through `AdminServer` (services.common.adminhttp: bounded against slow clients).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
    "STORE_BATCH",
    "FRAME_ERRORS",
    "ACK_RECEIVED",
    "ACK_STORED",
    "ACK_DELIVERED",
    "MESSAGES_IN_TEXT",
    "AdminServer",
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
STORE_BATCH = Histogram(
    "flare_store_batch_size", "Messages per store-consumer batch",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000),
)
FRAME_ERRORS = Counter("flare_frame_errors_total", "Client frames answered with an error", ["code"])


# Label children bound once: `labels()` is a dict lookup under a lock, and these three
# run several times per message.
ACK_RECEIVED = ACK_LATENCY.labels("received")
ACK_STORED = ACK_LATENCY.labels("stored")
ACK_DELIVERED = ACK_LATENCY.labels("delivered")
MESSAGES_IN_TEXT = MESSAGES_IN.labels("text")
