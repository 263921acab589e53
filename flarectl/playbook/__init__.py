"""Playbooks: YAML runbooks of flarectl steps that check themselves (README, ARCHITECTURE §12).

schema (pydantic, errors name line and field) -> engine (steps, checks with JMESPath,
approval gates, rollback in reverse) -> records (run files and the audit log).
"""

from __future__ import annotations

from .engine import Engine, interactive_confirm, new_run_id
from .library import find_playbook, playbook_dirs, playbooks
from .records import RunStore
from .schema import Playbook, load_playbook, parse_playbook

__all__ = ["Engine", "Playbook", "RunStore", "find_playbook", "interactive_confirm", "load_playbook",
           "new_run_id", "parse_playbook", "playbook_dirs", "playbooks"]
