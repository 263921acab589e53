"""The load test's result: one plain dict (what `-o json` prints), its thresholds, its table."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from .params import LoadTestParams
from .stats import LATENCIES, WorkerStats
from .verifier import Verdict

__all__ = ["build_report", "render_report", "breached"]


def _check(name: str, value: float | int | None, limit: float | int | None, *, at_least: bool = False) -> dict:
    if limit is None:
        return {"name": name, "value": value, "limit": None, "ok": True}
    ok = value is not None and (value >= limit if at_least else value <= limit)
    return {"name": name, "value": value, "limit": limit, "ok": ok}


def build_report(
    params: LoadTestParams, *, run_id: str, stats: WorkerStats, verdict: Verdict, totals: dict[str, int],
    send_s: float, wall_s: float, cpu_s: float, server_cpu_s: float | None, worker_failures: dict[int, str],
    timed_out: bool, duplicate_kinds: dict[str, int] | None = None,
) -> dict:
    c = stats.counters
    latency = {name: stats.latencies[name].summary(scale=1000) for name in LATENCIES}
    target = params.target_messages
    rate_ratio = verdict.stored / target if target else 0.0
    connection_errors = c["connect_failures"] + c["disconnects"]
    unconfirmed = totals.get("unconfirmed", 0)
    # `busy` (a shed send, docs/protocol.md) is the server protecting its latency, reported
    # as `shed`, apart from errors and from losses.
    errors = connection_errors + sum(n for code, n in stats.error_frames.items() if code != "busy") + unconfirmed
    p99 = latency["send_arrival"]["p99"]
    thresholds = [
        _check("lost", verdict.lost_messages, params.max_loss),
        _check("duplicated", totals.get("duplicates", 0), params.max_duplicates),
        _check("out_of_order", totals.get("out_of_order", 0), params.max_out_of_order),
        _check("rate", round(rate_ratio, 4), params.min_rate, at_least=True),
        _check("errors", errors, params.max_errors),
        _check("recovered", totals.get("recovered", 0), params.max_recovered),
        _check("p99_ms", p99, None if params.max_p99 is None else round(params.max_p99 * 1000, 3)),
        _check("seq_conflicts", verdict.seq_conflicts, 0),
        _check("worker_failures", len(worker_failures), 0),
        _check("completed", 0 if timed_out else 1, 1, at_least=True),
    ]
    failed = [t["name"] for t in thresholds if not t["ok"]]
    report = {
        "ok": not failed,
        "breached": failed,
        "run_id": run_id,
        "gateway": params.gateway,
        "users": params.users,
        "devices": params.users * params.devices_per_user,
        "groups": params.groups,
        "workers": params.workers,
        "duration_s": round(send_s, 3),
        "wall_s": round(wall_s, 3),
        "target_rate": params.rate,
        "target_messages": round(target),
        "sent": c["sent"],
        "sent_rate": round(c["sent"] / send_s, 1) if send_s else 0.0,
        "stored": verdict.stored,
        "stored_rate": round(verdict.stored / send_s, 1) if send_s else 0.0,
        "rate_ratio": round(rate_ratio, 4),
        "send_skipped": c["send_skipped"],
        "unconfirmed": unconfirmed,
        "send_failed": c["send_failed"],
        "shed": c["shed"],
        "shed_rate": round(c["shed"] / send_s, 1) if send_s else 0.0,
        "shed_retried": c["shed_retried"],  # resends answered `busy`, sent again until stored
        "resent": c["resent"],
        "deliveries_expected": verdict.deliveries_expected,
        "received_live": totals.get("received_live", 0),
        "received_sync": totals.get("received_sync", 0),
        "recovered": totals.get("recovered", 0),
        "lost": verdict.lost_messages,
        "lost_deliveries": verdict.lost_deliveries,
        "never_delivered": verdict.never_seen,
        "duplicated": totals.get("duplicates", 0),
        "duplicate_kinds": duplicate_kinds or {},
        "crossed_sync": totals.get("crossed", 0),
        "out_of_order": totals.get("out_of_order", 0),
        "seq_conflicts": verdict.seq_conflicts,
        "latency_ms": latency,
        "connections": {
            "connects": c["connects"], "connect_failures": c["connect_failures"], "auth_failures": c["auth_failures"],
            "disconnects": c["disconnects"], "reconnects": c["reconnects"], "churn_events": c["churn_events"],
            "connected_at_end": totals.get("connected_at_end", 0), "never_connected": totals.get("never_connected", 0),
            "close_codes": dict(stats.close_codes),
        },
        "connection_errors": connection_errors,
        "error_frames": dict(stats.error_frames),
        # Sends the filter refused, said as such: a spam rule's frequency limit, not a fault.
        "refused_by_filter": {"rate_limited": stats.error_frames.get("rate_limited", 0),
                              "rejected": stats.error_frames.get("rejected", 0)},
        "per_user_rate": round(params.rate / params.users, 3) if params.users else 0.0,
        "errors": errors,
        "cpu": {
            "tester_s": round(cpu_s, 3),
            "tester_pct": round(100 * cpu_s / wall_s, 1) if wall_s else None,
            "server_s": None if server_cpu_s is None else round(server_cpu_s, 3),
            "server_pct": None if server_cpu_s is None or not wall_s else round(100 * server_cpu_s / wall_s, 1),
        },
        "thresholds": thresholds,
        "worker_failures": {str(k): v for k, v in worker_failures.items()},
        "lost_sample": verdict.lost_sample,
    }
    return report


def breached(report: dict) -> bool:
    return not report["ok"]


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def render_report(report: dict) -> Group:
    summary = Table(title=f"flarectl loadtest {report['run_id']} → {report['gateway']}", header_style="bold", show_header=False)
    summary.add_column("what")
    summary.add_column("value", justify="right")
    rows = [
        ("users / devices / groups", f"{report['users']} / {report['devices']} / {report['groups']}"),
        ("workers", report["workers"]),
        ("duration", f"{report['duration_s']:.1f} s"),
        ("target", f"{report['target_rate']:g} msg/s ({report['target_messages']} msgs)"),
        ("sent", f"{report['sent']} ({report['sent_rate']:g} msg/s)"),
        ("stored", f"{report['stored']} ({report['stored_rate']:g} msg/s, {100 * report['rate_ratio']:.1f} % of target)"),
        ("deliveries expected", report["deliveries_expected"]),
        ("received live / via sync", f"{report['received_live']} / {report['received_sync']}"),
        ("recovered by sync", report["recovered"]),
        ("lost (messages / deliveries)", f"{report['lost']} / {report['lost_deliveries']}"),
        ("duplicated", report["duplicated"]),
        ("crossed sync/push (not duplicates)", report["crossed_sync"]),
        ("out of order", report["out_of_order"]),
        ("unconfirmed sends", report["unconfirmed"]),
        ("shed sends (busy)", f"{report['shed']} (+{report['shed_retried']} resends answered busy, sent again)"
         if report["shed_retried"] else report["shed"]),
        ("connection errors", report["connection_errors"]),
        ("reconnects (churn)", f"{report['connections']['reconnects']} ({report['connections']['churn_events']})"),
        ("rate-limited sends (filter spam rule)", report["refused_by_filter"]["rate_limited"]),
        ("rejected sends (filter sensitive word)", report["refused_by_filter"]["rejected"]),
        ("error frames", ", ".join(f"{k}={v}" for k, v in report["error_frames"].items()) or "0"),
        ("tester CPU", f"{report['cpu']['tester_s']:.1f} s ({report['cpu']['tester_pct']} %)"),
    ]
    if report["cpu"]["server_s"] is not None:
        rows.append(("server CPU", f"{report['cpu']['server_s']:.1f} s ({report['cpu']['server_pct']} %)"))
    for what, value in rows:
        summary.add_row(what, str(value))

    latency = Table(title="latency (ms)", header_style="bold")
    for column in ("path", "count", "p50", "p90", "p99", "p99.9", "max"):
        latency.add_column(column, justify="left" if column == "path" else "right")
    labels = {"send_received": "send → received", "send_stored": "send → stored",
              "send_delivered": "send → delivered ack", "send_arrival": "send → arrival"}
    for name, label in labels.items():
        s = report["latency_ms"][name]
        latency.add_row(label, str(s["count"]), _ms(s["p50"]), _ms(s["p90"]), _ms(s["p99"]), _ms(s["p99_9"]), _ms(s["max"]))

    checks = Table(title="thresholds", header_style="bold")
    for column in ("check", "value", "limit", "result"):
        checks.add_column(column)
    for t in report["thresholds"]:
        if t["limit"] is None:
            continue
        checks.add_row(t["name"], str(t["value"]), str(t["limit"]), "ok" if t["ok"] else "[bold red]BREACHED[/]")
    parts: list[object] = [summary, latency, checks]
    limited = report["refused_by_filter"]["rate_limited"]
    if limited:
        parts.append(Text(
            f"note: {limited} sends were refused as rate_limited by a filter-rules spam rule (a frequency limit per "
            f"sender); this test sends {report['per_user_rate']:g} messages/s per user. See `flarectl config get "
            f"filter-rules`, raise the limit, or use more --users for the same --rate."))
    return Group(*parts)
