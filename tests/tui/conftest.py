"""`snap_compare`: SVG snapshot tests of the TUI, in the shape of pytest-textual-snapshot's
fixture (which cannot be installed here: 1.1.0 pins syrupy 4.8.0, which needs pytest < 9).

    assert snap_compare(app, press=["tab", "enter"], terminal_size=(80, 24), run_before=coro)

The app runs headless at the given size; the screenshot (Textual's own SVG export) is
compared with `tests/tui/__snapshots__/<test name>.svg`. A mismatch fails with the visible
text of both, line by line, and leaves the new SVG in pytest's tmp dir. To accept a
deliberate change: `FLARE_UPDATE_SNAPSHOTS=1 pytest tests/tui/test_tui_snapshots.py`, then
look at the SVGs.
"""

from __future__ import annotations

import asyncio
import difflib
import html
import inspect
import os
import re
from pathlib import Path

import pytest

SNAPSHOTS = Path(__file__).parent / "__snapshots__"


def visible_text(svg: str) -> list[str]:
    """The characters on screen, one string per terminal line (for a readable diff)."""
    lines: dict[float, list[tuple[float, str]]] = {}
    for match in re.finditer(r'<text class="[^"]*" x="([\d.]+)" y="([\d.]+)"[^>]*>(.*?)</text>', svg):
        x, y = float(match.group(1)), float(match.group(2))
        lines.setdefault(y, []).append((x, html.unescape(match.group(3)).replace("\xa0", " ")))
    return ["".join(text for _, text in sorted(parts)).rstrip() for _, parts in sorted(lines.items())]


async def _screenshot(app, press, terminal_size, run_before) -> str:
    async with app.run_test(size=terminal_size) as pilot:
        if run_before is not None:
            result = run_before(pilot)
            if inspect.isawaitable(result):
                await result
        await pilot.pause()
        if press:
            await pilot.press(*press)
        await pilot.wait_for_scheduled_animations()
        await pilot.pause()
        return app.export_screenshot(simplify=True)


@pytest.fixture
def snap_compare(request, tmp_path):
    def compare(app, press=(), terminal_size=(80, 24), run_before=None) -> bool:
        svg = asyncio.run(_screenshot(app, list(press), terminal_size, run_before))
        svg = re.sub(r"terminal-\d+", "terminal", svg)  # a per-run id in class names
        path = SNAPSHOTS / f"{request.node.name}.svg"
        if os.environ.get("FLARE_UPDATE_SNAPSHOTS") == "1":
            SNAPSHOTS.mkdir(exist_ok=True)
            path.write_text(svg)
            return True
        if not path.exists():
            pytest.fail(f"no snapshot {path.name}; create it with FLARE_UPDATE_SNAPSHOTS=1 and look at it")
        expected = path.read_text()
        if expected == svg:
            return True
        (tmp_path / path.name).write_text(svg)
        diff = "\n".join(difflib.unified_diff(visible_text(expected), visible_text(svg), "snapshot", "now",
                                              lineterm=""))
        pytest.fail(f"{path.name} differs (new one in {tmp_path / path.name}):\n{diff or '(styles only)'}")

    return compare
