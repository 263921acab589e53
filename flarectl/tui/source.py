"""Where the TUI's picture comes from, and where it goes for the incident review.

- `live_updates(address, token)`: the control plane's `Watch` stream (a snapshot, then
  changes), reconnecting with backoff forever; it yields `("link", connected, error)` and
  `("update", update)` items so the app can show a down control plane as such.
- `Recorder(path)`: every update as one JSON line in a gzip file, with the wall time it
  arrived: `{"t": 1796158218.7, "u": {...}}`. Bounded by `max_bytes` (the recording stops,
  it never fills the disk).
- `Recording(path)`: a recording read back, folded into pictures for pause, step and jump.
"""

from __future__ import annotations

import asyncio
import bisect
import gzip
from collections.abc import AsyncIterator
from pathlib import Path

from controlplane.aggregate import apply_changes
from controlplane.client import AdminClient
from services.common import codec
from services.common.errors import FlareError, InvalidInput, Unauthorized

__all__ = ["live_updates", "Recorder", "Recording"]


async def live_updates(address: str, token: str | None, *, interval_s: float = 1.0,
                       max_delay_s: float = 5.0) -> AsyncIterator[tuple]:
    delay = 0.5
    while True:
        try:
            async with AdminClient(address, token=token) as client:
                connected = False
                async for update in client.watch(interval_s=interval_s):
                    if not connected:
                        connected = True
                        delay = 0.5
                        yield ("link", True, "")
                    yield ("update", update)
        except Unauthorized as exc:
            yield ("link", False, f"refused: {exc}")
            return  # a token that is refused now is refused on retry too
        except FlareError as exc:
            yield ("link", False, str(exc))
        await asyncio.sleep(delay)
        delay = min(delay * 2, max_delay_s)


class Recorder:
    def __init__(self, path: str | Path, *, max_bytes: int = 512 * 1024 * 1024) -> None:
        self.path = Path(path)
        self._file = gzip.open(self.path, "wb", compresslevel=6)
        self._max = max_bytes
        self._written = 0
        self.full = False

    def write(self, at: float, update: dict) -> None:
        if self.full:
            return
        line = codec.dumps({"t": at, "u": update}) + b"\n"
        if self._written + len(line) > self._max:
            self.full = True
            return
        self._file.write(line)
        self._written += len(line)

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class Recording:
    """A recording in memory as (time, update) pairs; `picture_at(i)` folds updates 0..i
    (from the nearest snapshot at or before i, so a jump does not replay the whole file)."""

    def __init__(self, entries: list[tuple[float, dict]], *, max_entries: int = 200_000) -> None:
        if not entries:
            raise InvalidInput("the recording holds no updates")
        self.entries = entries[:max_entries]
        self.times = [t for t, _ in self.entries]
        self._snapshots = [i for i, (_, u) in enumerate(self.entries) if u.get("type") == "snapshot"]
        if not self._snapshots or self._snapshots[0] != 0:
            raise InvalidInput("the recording does not start with a snapshot")

    @classmethod
    def load(cls, path: str | Path) -> Recording:
        try:
            with gzip.open(path, "rb") as f:
                entries = []
                for number, line in enumerate(f, 1):
                    item = codec.loads(line)
                    if not isinstance(item, dict) or "u" not in item:
                        raise InvalidInput(f"{path}:{number}: not a recorded update")
                    entries.append((float(item.get("t", 0.0)), item["u"]))
        except (OSError, EOFError, codec.JSONDecodeError) as exc:
            raise InvalidInput(f"{path} is not a flarectl tui recording: {exc}") from exc
        return cls(entries)

    def __len__(self) -> int:
        return len(self.entries)

    def picture_at(self, index: int) -> dict:
        index = max(0, min(index, len(self.entries) - 1))
        start = self._snapshots[bisect.bisect_right(self._snapshots, index) - 1]
        picture = None
        for _, update in self.entries[start:index + 1]:
            picture = apply_changes(picture, update)
        assert picture is not None
        return picture

    def index_at(self, at: float) -> int:
        """The last update at or before wall time `at` (the first if `at` is earlier)."""
        return max(0, bisect.bisect_right(self.times, at) - 1)
