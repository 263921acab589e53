"""Root fixtures. Real servers come from tests/infra (started on demand, session-scoped)."""

from __future__ import annotations

import os

import pytest

pytest_plugins = ["tests.infra.fixtures"]


def pytest_collection_modifyitems(config, items):
    # CI sets FLARE_REQUIRE_SERVERS=1: a server that cannot start is then an error, not a skip.
    pass


@pytest.fixture
def require_servers() -> bool:
    return os.environ.get("FLARE_REQUIRE_SERVERS") == "1"
