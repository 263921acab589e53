"""What a load test does: the parameters, as a validated model a scenario file also fills.

A scenario file is YAML with the same names as the command's options (dashes or
underscores), e.g.::

    gateway: ws://127.0.0.1:8700/ws
    users: 200
    devices_per_user: 2
    groups: 20
    group_size: 8
    rate: 500
    duration: 30s
    churn: 60
    max_p99: 50ms

Options given on the command line override the file.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from services.common.safeyaml import DocumentError, load_file
from services.common.paths import DEFAULT_DATA_DIR, token_secret_path

__all__ = ["LoadTestParams", "ParamsError", "parse_duration", "load_scenario", "build_params", "OPTION_NAMES"]

DEFAULT_SECRET_FILE = token_secret_path(DEFAULT_DATA_DIR)


class ParamsError(ValueError):
    """A parameter is wrong; the message names the option (`--rate …`)."""


_DURATION = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(us|µs|ms|s|m|h)?\s*$")
_UNIT_S = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: object, *, default_unit: str = "s") -> float:
    """'50ms', '1.5s', '2m', 30 → seconds. A bare number is in `default_unit`."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        return float(value) * _UNIT_S[default_unit]
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"not a duration: {value!r} (use e.g. 50ms, 2s, 1m)")
    return float(match.group(1)) * _UNIT_S[match.group(2) or default_unit]


def _is_loopback(host: str) -> bool:
    if host in {"localhost", "localhost.localdomain"}:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class LoadTestParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    gateway: str = "ws://127.0.0.1:8700/ws"
    users: int = Field(100, ge=2, le=1_000_000)
    devices_per_user: int = Field(1, ge=1, le=16)
    groups: int = Field(0, ge=0)
    group_size: int = Field(5, ge=2)
    group_fraction: float = Field(0.3, ge=0, le=1)  # share of sends that go to a group (when there are groups)
    # 1:1 peers per user, fixed for the run (people talk to their contacts, not to random
    # strangers: a new conversation per message is a different, much costlier workload); 0 = anyone.
    contacts: int = Field(8, ge=0)
    rate: float = Field(100.0, gt=0)  # messages/s across all senders
    duration: float = Field(10.0, gt=0)  # seconds of sending, ramp included
    ramp: float = Field(0.0, ge=0)
    churn: float = Field(0.0, ge=0)  # disconnect+reconnect events per minute, across all clients
    offline_fraction: float = Field(0.0, ge=0, lt=1)
    workers: int = Field(1, ge=1, le=64)
    token_secret: str | None = None
    token_secret_file: Path = DEFAULT_SECRET_FILE
    max_p99: float | None = Field(None, gt=0)  # seconds (given as 50ms, or a bare number of ms), on send → arrival
    max_loss: int = Field(0, ge=0)
    max_duplicates: int = Field(0, ge=0)
    max_out_of_order: int = Field(0, ge=0)
    max_errors: int | None = Field(0, ge=0)  # connection errors + error frames + unconfirmed sends
    max_recovered: int | None = Field(None, ge=0)  # deliveries a connected device only got through sync
    min_rate: float = Field(0.95, ge=0, le=1)  # stored messages / target messages
    final_sync: bool = True
    drain_timeout: float = Field(15.0, gt=0)
    connect_timeout: float = Field(5.0, gt=0)
    connect_concurrency: int = Field(64, ge=1)
    allow_remote: bool = False
    server_pid: int | None = Field(None, ge=1)
    seed: int | None = None
    body_bytes: int = Field(0, ge=0, le=60_000)  # padding added to every message body
    # Compact frames (docs/protocol.md): batch frames, `stored` standing for `received`, and
    # one cumulative ack per conversation per tick instead of one per message.
    compact: bool = True

    @field_validator("duration", "ramp", "max_p99", "drain_timeout", "connect_timeout", mode="before")
    @classmethod
    def _durations(cls, value: object, info: Any) -> object:
        if value is None:
            return None
        unit = "ms" if info.field_name == "max_p99" else "s"  # a bare latency limit is in ms
        return parse_duration(value, default_unit=unit)

    @field_validator("min_rate", mode="before")
    @classmethod
    def _ratio(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().endswith("%"):
            return float(value.strip()[:-1]) / 100
        return value

    @field_validator("gateway")
    @classmethod
    def _gateway(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in {"ws", "wss"} or not parts.hostname:
            raise ValueError(f"must be a ws:// or wss:// URL with a host, got {value!r}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> LoadTestParams:
        host = urlsplit(self.gateway).hostname or ""
        if not self.allow_remote and not _is_loopback(host):
            raise ValueError(f"gateway: {host} is not a loopback address; pass --allow-remote to load-test another host")
        if self.groups and self.group_size > self.users:
            raise ValueError(f"group_size: {self.group_size} is larger than --users {self.users}")
        if self.ramp > self.duration:
            raise ValueError(f"ramp: {self.ramp:g}s is longer than --duration {self.duration:g}s")
        if self.online_users < 1:
            raise ValueError("offline_fraction: leaves no online user to send")
        return self

    # -- derived -------------------------------------------------------------------------

    @property
    def offline_users(self) -> int:
        return int(self.users * self.offline_fraction)

    @property
    def online_users(self) -> int:
        return self.users - self.offline_users

    @property
    def target_messages(self) -> float:
        """Messages the schedule asks for: the rate ramps linearly from 0 over `ramp` seconds."""
        return self.rate * (self.duration - self.ramp / 2)

    @property
    def hard_timeout(self) -> float:
        """Nothing runs longer than this: connecting, sending, draining, reporting."""
        connect_budget = self.connect_timeout * 2 + self.users * self.devices_per_user / 200
        return connect_budget + self.duration + 2 * self.drain_timeout + 15

    def secret_bytes(self) -> bytes:
        if self.token_secret:
            return self.token_secret.encode()
        try:
            return self.token_secret_file.read_bytes().strip()
        except OSError as exc:
            raise ParamsError(
                f"--token-secret-file: cannot read {self.token_secret_file} ({exc.strerror}); "
                "pass --token-secret-file or --token-secret (the server's token secret)"
            ) from exc


OPTION_NAMES = {name: "--" + name.replace("_", "-") for name in LoadTestParams.model_fields}
OPTION_NAMES["final_sync"] = "--no-final-sync"


def load_scenario(path: Path) -> dict[str, Any]:
    try:
        data = load_file(path) or {}
    except DocumentError as exc:
        raise ParamsError(f"--scenario: {exc}") from None
    if not isinstance(data, dict):
        raise ParamsError(f"--scenario: {path} must hold a mapping of option names to values")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def build_params(*, scenario: Path | None = None, **given: Any) -> LoadTestParams:
    """Scenario file values, overridden by the options given (None = not given)."""
    data = load_scenario(scenario) if scenario is not None else {}
    data.update({k: v for k, v in given.items() if v is not None})
    try:
        return LoadTestParams.model_validate(data)
    except ValidationError as exc:
        raise ParamsError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        message = error["msg"].removeprefix("Value error, ")
        if not field and ":" in message:  # model-level checks name their field first
            field, _, message = message.partition(": ")
        option = OPTION_NAMES.get(field, field)
        if error["type"] == "extra_forbidden":
            problems.append(f"unknown scenario key {field!r}")
        elif error["type"] == "greater_than" and field in {"rate", "duration"}:
            problems.append(f"{option} must be > 0 (got {error['input']!r})")
        elif error["type"] == "greater_than_equal" and field == "users":
            problems.append(f"{option} must be at least 2 (got {error['input']!r}): messages need a sender and a recipient")
        else:
            problems.append(f"{option}: {message}")
    return "; ".join(problems)
