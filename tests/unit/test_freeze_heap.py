"""freeze_startup_heap: what lived at start-up is out of the full collection's walk."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_PROBE = """
import gc
from services.common.runtime import freeze_startup_heap
started = [[i] for i in range(50_000)]  # long-lived, like a started service's state
before = len(gc.get_objects())
frozen = freeze_startup_heap()
after = len(gc.get_objects())
traffic = [[i] for i in range(1_000)]  # created later: still collected
print(before, frozen, after, len(gc.get_objects()) - after)
"""


def test_objects_alive_at_start_are_frozen_and_later_ones_are_not() -> None:
    out = subprocess.run([sys.executable, "-c", _PROBE], cwd=ROOT, capture_output=True, text=True, check=True)
    before, frozen, after, later = map(int, out.stdout.split())
    assert frozen >= 50_000
    assert after < before - 50_000  # the collector no longer tracks them
    assert later >= 1_000  # what the traffic makes afterwards is tracked as usual
