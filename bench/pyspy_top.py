"""Top frames of a py-spy raw (collapsed-stack) profile, by own and by total time.

    python bench/pyspy_top.py PROFILE.txt [--top 25] [--process core|"gateway worker"]

Own time: samples whose innermost frame is the function (where the CPU is). Total time:
samples with the function anywhere on the stack (what a path costs, callees included).
Frames are shortened to `function (file)`, dropping line numbers, so one function counts once.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_LINE = re.compile(r":\d+\)$")
_LOOP = ("Runner.run (asyncio/runners.py)", "run (uvloop/__init__.py)")


def _process_name(label: str) -> str:
    command = label.split(":", 1)[1].strip('"') if ":" in label else label
    return "gateway worker" if "gateway_worker" in command else "core" if "flarectl" in command else command[:40]


def top_frames(text: str, top: int = 25, process: str | None = None) -> str:
    """`process`: only that process's samples (percentages of its own), e.g. "core"."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    per_process: Counter[str] = Counter()
    samples = 0
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        parts = stack.split(";")
        labels = [p for p in parts if p.startswith("process ")]
        frames = [_LINE.sub(")", f) for f in parts if not f.startswith("process ")]
        # Drop the entry point down to the event loop: every sample shares it.
        cut = max((i for i, f in enumerate(frames) if f in _LOOP), default=-1)
        frames = frames[cut + 1:]
        name = _process_name(labels[-1]) if labels else "?"
        if not frames or (process is not None and name != process):
            continue
        per_process[name] += n
        samples += n
        own[frames[-1]] += n
        for frame in set(frames):
            total[frame] += n
    out = [f"{samples} samples (GIL held); by process: "
           + ", ".join(f"{name} {100 * k / max(1, samples):.0f}%" for name, k in per_process.most_common()),
           "", "own %  function"]
    out += [f"{100 * n / samples:5.1f}  {f}" for f, n in own.most_common(top)]
    out += ["", "total %  function"]
    out += [f"{100 * n / samples:5.1f}  {f}" for f, n in total.most_common(top)]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--process", help='only this process: "core" or "gateway worker"')
    args = parser.parse_args()
    print(top_frames(args.profile.read_text(), args.top, args.process))


if __name__ == "__main__":
    main()
