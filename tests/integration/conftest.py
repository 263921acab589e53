"""Fixtures several integration tests share."""

from __future__ import annotations

import pytest

from services.backends.embedded.sqliteconfig import SQLiteConfigStore


@pytest.fixture
async def configstore(tmp_path):
    """A started embedded ConfigStore that polls every 20 ms, so watches answer within a test's patience."""
    store = SQLiteConfigStore(tmp_path / "config.db", poll_interval_s=0.02)
    await store.start()
    yield store
    await store.close()
