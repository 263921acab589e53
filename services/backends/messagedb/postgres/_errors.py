"""asyncpg exceptions -> Flare errors, at the adapter edge."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg

from services.common.errors import BackendError, BackendUnavailable, Conflict, FlareError, InvalidInput, NotFound

__all__ = ["translated"]

_UNAVAILABLE = (
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.ConnectionFailureError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.SerializationError,
    asyncpg.exceptions.DeadlockDetectedError,
    asyncpg.exceptions.QueryCanceledError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.InternalClientError,  # "another operation is in progress" after the server went away
    ConnectionError,
    OSError,
    asyncio.TimeoutError,
)


@contextmanager
def translated(what: str, **details: object) -> Iterator[None]:
    try:
        yield
    except FlareError:
        raise
    except asyncpg.exceptions.UniqueViolationError as exc:
        raise Conflict(f"{what}: {exc.detail or exc}", constraint=exc.constraint_name, **details) from exc
    except asyncpg.exceptions.InvalidCatalogNameError as exc:
        # The database itself is missing: `flarectl migrate up --create-database` makes it.
        raise NotFound(f"{what}: {exc}", **details) from exc
    except (asyncpg.exceptions.DataError, asyncpg.exceptions.CharacterNotInRepertoireError) as exc:
        raise InvalidInput(f"{what}: {exc}", **details) from exc
    except _UNAVAILABLE as exc:
        raise BackendUnavailable(f"{what}: PostgreSQL unavailable: {exc}", **details) from exc
    except asyncpg.exceptions.PostgresError as exc:
        raise BackendError(f"{what}: {exc}", **details) from exc
