"""flarectl loadtest: simulated clients over real WebSockets, and a verdict on what they got.

Modules: params (options and scenario files), plan (users, devices, groups), client (one
simulated device), worker (one process's share), engine (the parent), verifier (lost /
duplicated / out-of-order), histogram (mergeable latency percentiles), report.
"""

from __future__ import annotations

from .engine import LoadTestError, Progress, run_loadtest
from .histogram import LatencyHistogram
from .params import LoadTestParams, ParamsError, build_params
from .report import render_report

__all__ = [
    "LoadTestParams", "ParamsError", "build_params", "run_loadtest", "LoadTestError", "Progress",
    "LatencyHistogram", "render_report",
]
