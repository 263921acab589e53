"""A run's state file and the audit log, under `<data_dir>/playbooks/`.

    runs/<run id>.json   the run: playbook, its digest, vars, captured values, each step's
                         state; replaced atomically after every step, so a kill leaves the
                         step that was running marked `running` and --resume starts there
    audit.jsonl          one JSON line per step event of every run (run id, who, when, step,
                         result, sha256 of the output), appended, never rewritten
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from pathlib import Path

import orjson

from services.common.errors import InvalidInput, NotFound
from services.common.paths import create_private, ensure_private_dir, write_private

__all__ = ["RunStore", "digest", "utc_now"]

_RUN_ID = re.compile(r"^[A-Za-z0-9._-]{1,80}$")


def digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def utc_now() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"


class RunStore:
    def __init__(self, data_dir: Path) -> None:
        self.root = Path(data_dir) / "playbooks"

    def _run_path(self, run_id: str) -> Path:
        if not _RUN_ID.match(run_id):
            raise InvalidInput(f"{run_id!r} is not a playbook run id", field="resume")
        return self.root / "runs" / f"{run_id}.json"

    def save(self, run: dict) -> None:
        ensure_private_dir(self.root / "runs")
        path = self._run_path(run["run_id"])
        staged = path.with_suffix(".json.tmp")
        write_private(staged, orjson.dumps(run, option=orjson.OPT_INDENT_2))
        os.replace(staged, path)

    def load(self, run_id: str) -> dict:
        try:
            return orjson.loads(self._run_path(run_id).read_bytes())
        except FileNotFoundError:
            raise NotFound(f"no playbook run {run_id} under {self.root}") from None

    def audit(self, event: dict) -> None:
        ensure_private_dir(self.root)
        fd = create_private(self.root / "audit.jsonl", os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, orjson.dumps(event) + b"\n")  # one write per line: O_APPEND keeps lines whole
        finally:
            os.close(fd)

    def events(self) -> list[dict]:
        path = self.root / "audit.jsonl"
        if not path.exists():
            return []
        out = []
        for number, line in enumerate(path.read_bytes().splitlines(), 1):
            if line.strip():
                try:
                    out.append(orjson.loads(line))
                except orjson.JSONDecodeError:
                    raise InvalidInput(f"{path}:{number}: not a JSON line") from None
        return out
