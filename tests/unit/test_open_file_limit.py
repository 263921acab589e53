"""A Flare server lifts its soft open-files limit to the hard one (more WebSocket clients fit)."""

from __future__ import annotations

import subprocess
import sys


def test_soft_limit_is_raised_to_the_hard_limit():
    script = (
        "import resource\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (256, 512))\n"
        "from services.common.runtime import tune_interpreter\n"
        "tune_interpreter()\n"
        "print(*resource.getrlimit(resource.RLIMIT_NOFILE))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=True)
    assert out.stdout.split() == ["512", "512"]
