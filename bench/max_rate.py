"""The highest message rate `flarectl up` sustains: p99 send->deliver under a bound, nothing lost.

    python bench/max_rate.py --users 100 --devices-per-user 2 [--p99-ms 100] [--low 100 --high 4000]
        [--up-arg=--gateway-workers --up-arg=2] [--no-anchor]

Each trial is a fresh monolith and a full load test (bench/e2e_bench.py); a trial passes when
p99 send->arrival <= --p99-ms and nothing is lost, duplicated or out of order. Bisects between
--low and --high and prints JSON with every trial. Then, in the same invocation, the bare
relay (bench/relay_anchor.py, same connections, same p99 bound) is measured and Flare's
deliveries/s is printed as a fraction of the relay's. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from e2e_bench import run_trial, server_env  # noqa: E402
from relay_anchor import max_relay_rate  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--devices-per-user", type=int, default=2)
    parser.add_argument("--groups", type=int, default=10)
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--group-fraction", type=float, default=None)
    parser.add_argument("--duration", type=float, default=15)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--p99-ms", type=float, default=100)
    parser.add_argument("--low", type=float, default=100)
    parser.add_argument("--high", type=float, default=4000)
    parser.add_argument("--trials", type=int, default=6, help="bisection steps after the bounds")
    parser.add_argument("--up-arg", action="append", default=[], help="extra `flarectl up` option (repeatable)")
    parser.add_argument("--compact", action=argparse.BooleanOptionalAction, default=True,
                        help="the load tester asks for compact frames (docs/protocol.md)")
    parser.add_argument("--anchor", action=argparse.BooleanOptionalAction, default=True,
                        help="also measure the bare relay and print the fraction")
    parser.add_argument("--anchor-duration", type=float, default=4)
    parser.add_argument("--server-env", action="append", default=[], metavar="KEY=VALUE",
                        help="an environment setting for the server only, e.g. FLARE_GATEWAY__WEBSOCKET=picows")
    args = parser.parse_args()

    trials: list[dict] = []

    def passes(rate: float) -> bool:
        result = run_trial(users=args.users, devices_per_user=args.devices_per_user, groups=args.groups,
                           group_size=args.group_size, rate=rate, duration=args.duration, workers=args.workers,
                           group_fraction=args.group_fraction, up_args=args.up_arg, compact=args.compact,
                           server_env=server_env(args.server_env))
        ok = (result["send_deliver_p99_ms"] <= args.p99_ms and result["lost"] == 0 and result["duplicated"] == 0
              and result["out_of_order"] == 0 and result["messages_per_s"] >= 0.95 * rate)
        trials.append({"rate": rate, "passed": ok, **{k: result[k] for k in (
            "messages_per_s", "deliveries_per_s", "send_deliver_p50_ms", "send_deliver_p99_ms", "lost",
            "duplicated", "shed", "server_cpu_pct_sending", "tester_cpu_pct_sending")}, "memory": result["memory"]})
        print(json.dumps(trials[-1]), file=sys.stderr)
        return ok

    low, high = args.low, args.high
    best = low if passes(low) else 0.0
    if best and passes(high):
        best = high
    else:
        for _ in range(args.trials if best else 0):
            mid = round((low + high) / 2)
            if passes(mid):
                best = low = mid
            else:
                high = mid
    best_trial = max((t for t in trials if t["passed"]), key=lambda t: t["rate"], default=None)
    out = {
        "bench": "max_rate_monolith", "command": " ".join(["python", *sys.argv]),
        "clients": args.users * args.devices_per_user, "p99_bound_ms": args.p99_ms,
        "max_rate_msgs_per_s": best, "deliveries_per_s_at_max": best_trial["deliveries_per_s"] if best_trial else 0.0,
        "trials": trials,
    }
    if args.anchor:
        relay = max_relay_rate(connections=args.users * args.devices_per_user, p99_ms=args.p99_ms,
                               duration=args.anchor_duration, log=sys.stderr)
        out["relay_anchor"] = relay
        out["fraction_of_relay"] = (round(out["deliveries_per_s_at_max"] / relay["max_deliveries_per_s"], 3)
                                    if relay["max_deliveries_per_s"] else None)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
