"""One fixture per port, parametrized over every adapter (embedded here, production in
tests/contract/production.py; see its docstring for the entry shape).

`<port>` is a started adapter; `<port>_opener` returns further, not yet started
instances on the same backing storage, for close-and-reopen tests. Every instance an
opener made is closed at teardown (close is idempotent on every adapter).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from tests.contract import production

Opener = Callable[[], Any]


def _tmp(request: pytest.FixtureRequest):
    return request.getfixturevalue("tmp_path")


@asynccontextmanager
async def _file_log(request: pytest.FixtureRequest) -> AsyncIterator[Opener]:
    from services.backends.embedded.filelog import FileLog

    directory = _tmp(request) / "log"
    yield lambda: FileLog.from_url(f"file://{directory}")


@asynccontextmanager
async def _memory_cache(request: pytest.FixtureRequest) -> AsyncIterator[Opener]:
    from services.backends.embedded.memcache import MemoryCache

    # A memory cache has no storage to share: "reopen" hands back the same instance.
    cache = MemoryCache.from_url("memory://?sweep_interval=0.1")
    yield lambda: cache


@asynccontextmanager
async def _sqlite_messagedb(request: pytest.FixtureRequest) -> AsyncIterator[Opener]:
    from services.backends.messagedb.sqlite import SQLiteMessageDB

    path = _tmp(request) / "messages.db"
    yield lambda: SQLiteMessageDB.from_url(f"sqlite:///{path}")


@asynccontextmanager
async def _directory_objectstore(request: pytest.FixtureRequest) -> AsyncIterator[Opener]:
    from services.backends.embedded.dirstore import DirectoryObjectStore

    directory = _tmp(request) / "objects"
    yield lambda: DirectoryObjectStore.from_url(f"file://{directory}")


@asynccontextmanager
async def _sqlite_configstore(request: pytest.FixtureRequest) -> AsyncIterator[Opener]:
    from services.backends.embedded.sqliteconfig import SQLiteConfigStore

    path = _tmp(request) / "config.db"
    yield lambda: SQLiteConfigStore.from_url(f"sqlite:///{path}")


def _params(embedded: list, extra: list) -> list:
    return [pytest.param(factory, id=name) for name, factory in embedded] + [
        pytest.param(factory, id=name, marks=pytest.mark.servers) for name, factory in extra
    ]


@asynccontextmanager
async def _tracked(request: pytest.FixtureRequest) -> AsyncIterator[Opener]:
    opened: list[Any] = []
    async with request.param(request) as opener:

        def open_tracked() -> Any:
            adapter = opener()
            opened.append(adapter)
            return adapter

        try:
            yield open_tracked
        finally:
            for adapter in reversed(opened):
                await adapter.close()


async def _started(opener: Opener) -> Any:
    adapter = opener()
    await adapter.start()
    return adapter


@pytest.fixture(params=_params([("file", _file_log)], production.PRODUCTION_LOG))
async def log_opener(request):
    async with _tracked(request) as opener:
        yield opener


@pytest.fixture
async def log(log_opener):
    return await _started(log_opener)


@pytest.fixture(params=_params([("memory", _memory_cache)], production.PRODUCTION_CACHE))
async def cache_opener(request):
    async with _tracked(request) as opener:
        yield opener


@pytest.fixture
async def cache(cache_opener):
    return await _started(cache_opener)


@pytest.fixture(params=_params([("sqlite", _sqlite_messagedb)], production.PRODUCTION_MESSAGEDB))
async def messagedb_opener(request):
    async with _tracked(request) as opener:
        yield opener


@pytest.fixture
async def messagedb(messagedb_opener):
    db = await _started(messagedb_opener)
    await db.migrate()
    return db


@pytest.fixture(params=_params([("directory", _directory_objectstore)], production.PRODUCTION_OBJECTSTORE))
async def objectstore_opener(request):
    async with _tracked(request) as opener:
        yield opener


@pytest.fixture
async def objectstore(objectstore_opener):
    return await _started(objectstore_opener)


@pytest.fixture(params=_params([("sqlite", _sqlite_configstore)], production.PRODUCTION_CONFIGSTORE))
async def configstore_opener(request):
    async with _tracked(request) as opener:
        yield opener


@pytest.fixture
async def configstore(configstore_opener):
    return await _started(configstore_opener)


@pytest.fixture
def unique(request) -> str:
    """A short random suffix: tests against shared servers namespace their names with it."""
    import uuid

    return uuid.uuid4().hex[:10]
