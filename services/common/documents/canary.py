"""`canary`: a new spec of another kind, run by a few named instances before everyone gets it.

    kind: canary
    spec: {kind: filter-rules, instances: [filter-1], base_version: 3, spec: {...}}

While the target kind is served at `base_version`, the named instances are pushed the canary's
spec as version base_version + 1 (with its own digest); every other instance keeps the served
version. Any new version of the target kind ends the canary: applying the same spec promotes
it (the canary instances already run that version and digest, so nothing is pushed to them
again), a rollback or another spec sends them the served version back. An empty `instances`
ends it. `flarectl config canary` writes one (ARCHITECTURE §7).
"""

from __future__ import annotations

from pydantic import Field

from ._base import Model

__all__ = ["Canary", "CANARY_TARGETS"]

CANARY_TARGETS = ("filter-rules", "push", "tiering", "routing")


class Canary(Model):
    kind: str
    instances: list[str] = Field(max_length=64)  # [] ends the canary
    base_version: int = Field(ge=0)
    spec: dict
