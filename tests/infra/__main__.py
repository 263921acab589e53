"""python -m tests.infra {install,up,down,status} [--only etcd,redis,...]"""

from __future__ import annotations

import argparse
import json
import sys
import time

from .install import InfraError, ensure
from .servers import KINDS, down, endpoints_file, status, up


def _kinds(text: str | None) -> list[str]:
    if not text:
        return list(KINDS)
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise SystemExit(f"unknown server kind(s) {unknown}; known: {', '.join(KINDS)}")
    return [k for k in KINDS if k in kinds]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.infra", description=__doc__)
    parser.add_argument("command", choices=["install", "up", "down", "status"])
    parser.add_argument("--only", help=f"comma-separated kinds ({','.join(KINDS)}); default all")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args(argv)
    kinds = _kinds(args.only)
    log = (lambda _line: None) if args.json else (lambda line: print(line, file=sys.stderr))
    started = time.monotonic()
    try:
        if args.command == "install":
            timings = ensure(kinds, log=log)
            if args.json:
                print(json.dumps(timings))
        elif args.command == "up":
            servers = up(kinds, log=log)
            if args.json:
                print(json.dumps(servers, indent=2))
            else:
                for kind, data in servers.items():
                    print(f"{kind:14} {data['url']}")
                print(f"endpoints: {endpoints_file()}  ({time.monotonic() - started:.1f}s)")
        elif args.command == "down":
            down(kinds if args.only else None, log=log)
        else:
            report = status(kinds if args.only else None)
            if args.json:
                print(json.dumps(report, indent=2))
            elif not report:
                print(f"no servers recorded in {endpoints_file()}")
            for kind, data in report.items():
                state = "ready" if data["ready"] else f"DOWN ({data['problem']})"
                print(f"{kind:14} {data['url']}  {state}")
            return 0 if all(d["ready"] for d in report.values()) else 1
    except InfraError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
