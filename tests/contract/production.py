"""Production adapters that join the contract suites (ARCHITECTURE §4).

Each list entry is `(id, factory)`: `factory(request)` takes the pytest `request` and
returns an async context manager that yields an *opener* — a zero-argument callable
returning a NEW, not yet started adapter instance bound to the same backing storage
each time it is called (so the suites can close an adapter and reopen it to check that
data and committed offsets survive). The conftest starts and closes what the opener
returns; the context manager owns only the backing storage (servers, buckets,
databases). Real servers come from session-scoped fixtures in tests/infra, reached via
`request.getfixturevalue(...)`. The conftest marks every production entry `servers`.

Tests share one server, so the suites namespace their own topics, keys, buckets'
prefixes and conversation ids with random suffixes.

Example:

    @asynccontextmanager
    async def _kafka(request):
        bootstrap = request.getfixturevalue("kafka_server")
        yield lambda: KafkaLog.from_url(f"kafka://{bootstrap}")

    PRODUCTION_LOG = [("kafka", _kafka)]
"""

from __future__ import annotations

PRODUCTION_LOG: list = []
PRODUCTION_CACHE: list = []
PRODUCTION_MESSAGEDB: list = []
PRODUCTION_OBJECTSTORE: list = []
PRODUCTION_CONFIGSTORE: list = []
