"""Run the daemon as a process: `python -m controlplane` and `flarectl controlplane run`.

The signing secret lives in the data dir (token.secret, shared with `flarectl up`), and
on first start an admin token is written next to it (admin.token, 0600) so the operator
has a way in — the k3s kubeconfig idea. services/common/paths.py finds and writes both.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass
from pathlib import Path

from services.backends.registry import open_configstore
from services.common.config import load_config
from services.common.paths import ensure_admin_token, ensure_data_dir, load_or_create_secret

from .api import serve_grpc
from .daemon import ControlPlane

__all__ = ["DaemonSettings", "settings_from", "run_daemon"]


@dataclass(frozen=True, slots=True)
class DaemonSettings:
    store_url: str
    data_dir: Path
    host: str
    port: int
    resync_interval_s: float = 10.0
    token_secret: str = ""


def settings_from(config_file: str | None = None, *, store: str | None = None, data_dir: Path | None = None,
                  host: str | None = None, port: int | None = None, resync_interval_s: float = 10.0) -> DaemonSettings:
    cfg = load_config(config_file, data_dir=str(data_dir) if data_dir else None)
    return DaemonSettings(store_url=store or cfg.backend_url("configstore"), data_dir=cfg.data_dir,
                          host=host or cfg.controlplane.host, port=cfg.controlplane.port if port is None else port,
                          resync_interval_s=resync_interval_s, token_secret=cfg.token_secret)


async def run_daemon(settings: DaemonSettings, *, on_ready=None) -> None:
    ensure_data_dir(settings.data_dir)
    secret = load_or_create_secret(settings.data_dir, settings.token_secret)
    token_path = ensure_admin_token(settings.data_dir, secret)
    cp = ControlPlane(open_configstore(settings.store_url), secret, resync_interval_s=settings.resync_interval_s)
    await cp.start()
    try:
        port = await serve_grpc(cp, settings.host, settings.port)
        if on_ready is not None:
            on_ready(f"{settings.host}:{port}", token_path)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await cp.stop()


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
