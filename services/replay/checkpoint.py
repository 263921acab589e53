"""Replay checkpoints: `<data_dir>/replay/<run id>.json`, replaced atomically.

A checkpoint holds the plan as made (so `--resume` reads exactly the offsets the first
attempt fixed), each partition's `resume_from` (every window record below it is decided)
and the tally of those decisions.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from services.common import codec
from services.common.errors import InvalidInput, NotFound
from services.common.paths import ensure_private_dir, write_private

from .plan import ReplayPlan
from .store_target import Tally

__all__ = ["CheckpointStore"]

_RUN_ID = re.compile(r"^[A-Za-z0-9._-]{1,80}$")


class CheckpointStore:
    def __init__(self, directory: Path) -> None:
        self._dir = Path(directory)

    def _path(self, run_id: str) -> Path:
        if not _RUN_ID.match(run_id):
            raise InvalidInput(f"{run_id!r} is not a replay run id", field="resume")
        return self._dir / f"{run_id}.json"

    def save(self, plan: ReplayPlan, tally: Tally, *, status: str) -> None:
        ensure_private_dir(self._dir)
        path = self._path(plan.run_id)
        staged = path.with_suffix(".json.tmp")
        write_private(staged, codec.dumps({"status": status, "plan": plan.to_dict(), "tally": tally.to_dict()}))
        os.replace(staged, path)

    def load(self, run_id: str) -> tuple[ReplayPlan, Tally, str]:
        path = self._path(run_id)
        try:
            data = codec.loads(path.read_bytes())
        except FileNotFoundError:
            raise NotFound(f"no replay checkpoint {run_id} in {self._dir}") from None
        except ValueError as exc:
            raise InvalidInput(f"the replay checkpoint {path} is damaged: {exc}") from exc
        return ReplayPlan.from_dict(data["plan"]), Tally.from_dict(data.get("tally", {})), str(data.get("status"))
