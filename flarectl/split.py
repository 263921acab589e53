"""`flarectl up --split` and `flarectl down`: the CLI side of services/wiring/split.py."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

from flarectl.console import err, fail, out
from flarectl.exitcodes import ExitCode
from services.common.config import load_config
from services.common.errors import FlareError
from services.wiring.split import SplitDeployment, live_processes, read_state, stop_from_state

__all__ = ["up_split", "down"]


def up_split(config: Path | None, data_dir: Path | None, *, detach: bool, log_level: str) -> None:
    if config is None:
        fail("--split needs --config FILE naming the backends (Kafka, Redis, PostgreSQL, etcd)", ExitCode.USAGE,
             hint="see docs/split.example.toml")
    try:
        cfg = load_config(config, data_dir=data_dir)
    except (OSError, ValueError) as exc:
        fail(f"cannot load config: {exc}", ExitCode.INVALID)
    if cfg.embedded:
        fail("the split deployment needs production backends in [backends]", ExitCode.INVALID,
             hint="see docs/split.example.toml")
    if live_processes(Path(cfg.data_dir).resolve()):
        fail(f"a split deployment is already running from {Path(cfg.data_dir).resolve() / 'split.json'}",
             ExitCode.CONFLICT, hint=f"flarectl down --data-dir {cfg.data_dir}")
    deployment = SplitDeployment(cfg, config, log_level=log_level)
    stop = threading.Event()
    if not detach:
        # Installed before the start so a Ctrl-C during it still stops what was started.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    try:
        deployment.start()
    except FlareError as exc:
        fail(f"cannot start the split deployment: {exc}", ExitCode.UNAVAILABLE)
    if stop.is_set():  # interrupted while starting
        deployment.stop()
        raise SystemExit(int(ExitCode.INTERRUPTED))
    counts = ", ".join(f"{len(deployment.instances(s))} {s}" for s in ("gateway", "router", "store", "sync",
                                                                          "session", "filter"))
    out.print(f"[bold green]Flare (split) is up[/]  {counts}  control plane [cyan]{deployment.controlplane_address}[/]",
              highlight=False)
    for url in deployment.gateway_urls:
        out.print(f"  gateway [cyan]{url}[/]", highlight=False)
    out.print(f"state [cyan]{deployment.data_dir / 'split.json'}[/]  logs [cyan]{deployment.data_dir / 'logs'}[/]",
              highlight=False)
    if detach:
        out.print(f"stop: [bold]flarectl down --data-dir {deployment.data_dir}[/]", highlight=False)
        return
    out.print("stop: Ctrl-C", highlight=False)
    while not stop.wait(0.5):
        pass
    err.print("stopping…")
    deployment.stop()


def down(data_dir: Path | None) -> None:
    directory = Path(data_dir or load_config(None).data_dir).resolve()
    if read_state(directory) is None:
        fail(f"no split deployment recorded in {directory / 'split.json'}", ExitCode.NOT_FOUND)
    stopped = stop_from_state(directory)
    out.print(f"stopped {len(stopped)} processes" + (f": {', '.join(stopped)}" if stopped else ""), highlight=False)
