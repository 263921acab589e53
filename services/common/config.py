"""Flare's process configuration: one file (TOML or YAML) plus FLARE_* environment overrides.

Without a file everything is embedded under `data_dir` (./.flare by default), which is what
`flarectl up` runs. Env overrides use `__` between levels: FLARE_BACKENDS__LOG=kafka://127.0.0.1:9092,
FLARE_GATEWAY__PORT=9000. This is process config (where things are); the documents the
control plane pushes (filter rules, routing, tiering, push) are separate.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .paths import DEFAULT_DATA_DIR
from .safeyaml import load_text

__all__ = [
    "FlareConfig",
    "BackendsConfig",
    "GatewayConfig",
    "AdminConfig",
    "StoreConfig",
    "MemoryConfig",
    "RouterConfig",
    "SyncConfig",
    "SessionConfig",
    "ControlPlaneConfig",
    "SplitConfig",
    "load_config",
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BackendsConfig(_Section):
    """Adapter URLs; empty means the embedded default under data_dir."""

    log: str = ""
    cache: str = ""
    messagedb: str = ""
    objectstore: str = ""
    configstore: str = ""


class GatewayConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8700, ge=0, le=65535)
    max_frame_bytes: int = Field(64 * 1024, ge=1024)
    max_body_bytes: int = Field(16 * 1024, ge=1)
    outbound_queue: int = Field(4096, ge=8)  # frames per connection
    outbound_queue_bytes: int = Field(1 << 20, ge=64 * 1024)  # bytes per connection
    outbound_total_bytes: int = Field(128 << 20, ge=1 << 20)  # bytes over all connections
    heartbeat_timeout_s: float = Field(90.0, gt=0)
    shed_loop_lag_ms: float = Field(75.0, gt=0)  # `busy` while this process's loop runs this late, tick after tick
    # The WebSocket library under the gateway (services/gateway/links.py): the same protocol
    # to clients; picows parses and writes frames in Cython (half the server CPU per relayed
    # frame of websockets here, bench/results/2026-12-04).
    websocket: Literal["websockets", "picows"] = "picows"
    gateway_id: str = ""
    # Monolith only: gateway worker processes next to the core (services/wiring/gateway_workers.py);
    # 0 runs the gateway in the core's own process. Unset: `flarectl up` picks (gateway_workers.default_worker_count).
    workers: int = Field(0, ge=0, le=64)


class AdminConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8701, ge=0, le=65535)


class MemoryConfig(_Section):
    """Byte caps of the embedded backends' in-memory parts. The defaults, with the gateway's
    outbound cap, keep a monolith well inside 1 GiB. Only used to build the embedded
    default URLs: a configured `file://` or `memory://` URL carries its own
    `tail_bytes=` / `max_bytes=` instead."""

    log_tail_bytes: int = Field(64 << 20, ge=0)  # newest log records kept for consumers that keep up
    cache_bytes: int = Field(128 << 20, ge=1 << 20)  # memory:// cache: L0 copies, dedup hints, routes


class StoreConfig(_Section):
    topic: str = "flare.messages"
    partitions: int = Field(8, ge=1, le=1024)
    consumer_group: str = "flare-store"
    max_batch: int = Field(2000, ge=1)
    l0_ttl_s: int = Field(24 * 3600, ge=1)
    dedup_ttl_s: int = Field(24 * 3600, ge=1)
    # The message log is a buffer in front of the MessageDB: its records are persisted
    # within moments, so a day (or 1 GiB per partition) is plenty, and it bounds the log's
    # disk and its in-memory index.
    log_retention_s: int = Field(24 * 3600, ge=60)
    log_retention_bytes: int = Field(1 << 30, ge=1 << 20)  # per partition


class RouterConfig(_Section):
    offline_topic: str = "flare.offline"
    offline_retention_s: int = Field(24 * 3600, ge=60)  # a push notification older than this is useless
    offline_retention_bytes: int = Field(256 << 20, ge=1 << 20)  # per partition
    offline_consumer_group: str = "flare-notify"  # the notification service's position on the topic
    # Fan-out: members per step (routes looked up, frames queued, then the loop runs others),
    # and each sender's budget of member deliveries (services/delivery/budget.py).
    fanout_chunk: int = Field(500, ge=1, le=100_000)
    fanout_budget: int = Field(1_000_000, ge=1)
    fanout_budget_per_s: float = Field(10_000.0, ge=0)
    # DELIVERED acks are tracked per recipient for messages with at most this many
    # recipients; a bigger group's sender would get one ack frame per member.
    delivered_max_recipients: int = Field(1000, ge=1)
    pending_delivered_bytes: int = Field(64 << 20, ge=1 << 20)  # messages awaiting DELIVERED
    # Load shedding (services/delivery/pressure.py): new sends get `busy` while deliveries
    # run shed_delivery_lag_ms behind and the admitted messages waiting (shed_min_backlog
    # at least) would take shed_queue_ms to hand over at the recent delivery rate.
    shed_delivery_lag_ms: float = Field(50.0, gt=0)
    shed_queue_ms: float = Field(75.0, gt=0)
    shed_min_backlog: int = Field(20, ge=1)
    max_attempts: int = Field(5, ge=1)
    base_delay: float = Field(0.05, ge=0)
    max_delay: float = Field(2.0, ge=0)
    multiplier: float = Field(2.0, ge=1)


class SyncConfig(_Section):
    recall_window_s: int = Field(120, ge=0)
    page_limit: int = Field(200, ge=1, le=5000)


class SessionConfig(_Section):
    session_timeout_s: float = Field(120.0, gt=0)
    away_after_s: float = Field(300.0, gt=0)
    second_login: str = "replace"  # replace the old connection of the same user+device

    @field_validator("second_login")
    @classmethod
    def _policy(cls, value: str) -> str:
        if value not in {"replace", "reject"}:
            raise ValueError("second_login must be 'replace' or 'reject'")
        return value


class ControlPlaneConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8702, ge=0, le=65535)
    address: str = ""  # where instances reach the daemon; empty in the monolith (in-process)


class SplitConfig(_Section):
    """`flarectl up --split`: how many instances of each service, and where they listen."""

    gateways: int = Field(1, ge=1, le=64)
    routers: int = Field(1, ge=1, le=64)
    stores: int = Field(1, ge=1, le=64)
    syncs: int = Field(1, ge=1, le=64)
    sessions: int = Field(1, ge=1, le=64)
    filters: int = Field(1, ge=1, le=64)
    host: str = "127.0.0.1"
    # 0: every port is picked free at start; otherwise ports are handed out from here in
    # launch order (control plane first), so a restart keeps the same gateway URLs.
    base_port: int = Field(0, ge=0, le=65000)
    lease_ttl_s: int = Field(10, ge=2, le=300)  # a dead instance leaves the topology within this
    start_timeout_s: float = Field(60.0, gt=0)
    stop_timeout_s: float = Field(10.0, gt=0)  # SIGTERM, then SIGKILL after this


class FlareConfig(_Section):
    data_dir: Path = DEFAULT_DATA_DIR
    node_id: int = Field(1, ge=0, le=1023)
    token_secret: str = ""  # empty: read/create data_dir/token.secret
    backends: BackendsConfig = BackendsConfig()
    gateway: GatewayConfig = GatewayConfig()
    admin: AdminConfig = AdminConfig()
    memory: MemoryConfig = MemoryConfig()
    store: StoreConfig = StoreConfig()
    router: RouterConfig = RouterConfig()
    sync: SyncConfig = SyncConfig()
    session: SessionConfig = SessionConfig()
    controlplane: ControlPlaneConfig = ControlPlaneConfig()
    split: SplitConfig = SplitConfig()

    def backend_url(self, port: str) -> str:
        """The configured URL for a port, or the embedded default under data_dir."""
        url = getattr(self.backends, port)
        if url:
            return url
        base = self.data_dir.resolve()
        return {
            "log": f"file://{base}/log?tail_bytes={self.memory.log_tail_bytes}",
            "cache": f"memory://?max_bytes={self.memory.cache_bytes}",
            "messagedb": f"sqlite:///{base}/messages.db",
            "objectstore": f"file://{base}/objects",
            "configstore": f"sqlite:///{base}/config.db",
        }[port]

    @property
    def embedded(self) -> bool:
        return not any(getattr(self.backends, p) for p in BackendsConfig.model_fields)


def _apply_env(data: dict[str, Any], environ: dict[str, str]) -> dict[str, Any]:
    """FLARE_<FIELD>[__<FIELD>…] overrides. Only names whose first part is a config field
    count: other FLARE_* variables belong to other tools (FLARE_TOKEN for flarectl,
    FLARE_REQUIRE_SERVERS for the tests …). A typo inside a section still fails validation."""
    for name, value in environ.items():
        if not name.startswith("FLARE_"):
            continue
        path = name[len("FLARE_"):].lower().split("__")
        field = FlareConfig.model_fields.get(path[0])
        if field is None:
            continue
        if len(path) == 1 and isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            continue  # a bare section name (FLARE_CONTROLPLANE is flarectl's address variable)
        node = data
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                break
        else:
            node[path[-1]] = value
    return data


def load_config(path: str | Path | None = None, *, environ: dict[str, str] | None = None, **overrides: Any) -> FlareConfig:
    """Read the file (by extension: .toml, .yaml/.yml), apply FLARE_* env, then overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        text = p.read_text()
        if p.suffix == ".toml":
            data = tomllib.loads(text)
        else:
            data = load_text(text, source=str(p)) or {}  # bounded: aliases, depth, duplicate keys
    data = _apply_env(data, dict(os.environ if environ is None else environ))
    for key, value in overrides.items():
        if value is not None:
            data[key] = value
    return FlareConfig.model_validate(data)
