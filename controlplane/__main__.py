"""`python -m controlplane --store etcd://127.0.0.1:2379 --data-dir D --port 8702`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from services.common.errors import FlareError

from .runner import configure_logging, run_daemon, settings_from


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m controlplane", description="Flare control-plane daemon")
    parser.add_argument("--config", help="Flare config file (TOML/YAML)")
    parser.add_argument("--store", help="ConfigStore URL (etcd://host:port or sqlite:///path)")
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument("--resync-interval", type=float, default=10.0)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    settings = settings_from(args.config, store=args.store, data_dir=args.data_dir, host=args.host, port=args.port,
                             resync_interval_s=args.resync_interval)

    def ready(address: str, token_path: Path) -> None:
        # One parseable line on stdout: supervisors and tests wait for it.
        print(f"controlplane listening on {address} admin-token {token_path}", flush=True)

    try:
        asyncio.run(run_daemon(settings, on_ready=ready))
    except FlareError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 4
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
