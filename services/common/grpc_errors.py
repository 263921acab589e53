"""Flare errors <-> gRPC status, both directions (the gRPC edge of every service).

Server side, `rpc_errors` wraps a servicer method: a FlareError becomes its status code
with the error's `code` and JSON `details` in trailing metadata; anything else becomes
INTERNAL without leaking the exception text. Client side, `error_from_rpc` rebuilds the
SAME Flare error type with the same message and details from that metadata, and falls
back to the status code when the metadata is missing (a proxy, an unreachable server, a
server that is not Flare), so callers only ever see Flare errors.

A batch RPC answers each item's error in the reply instead (common.proto ItemError):
`item_error` and `error_from_item` are the same translation for one item, so a caller
of a batched client raises exactly what the unary call would have raised.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
import grpc.aio
import orjson

from services.common import errors as flare_errors
from services.common.errors import (
    BackendError,
    BackendUnavailable,
    Busy,
    CompactedError,
    Conflict,
    FlareError,
    Forbidden,
    InvalidInput,
    NotFound,
    RateLimited,
    Rejected,
    TooLarge,
    Unauthorized,
)
from services.common.proto import common_pb2

__all__ = [
    "CODE_KEY",
    "DETAILS_KEY",
    "status_for",
    "error_metadata",
    "abort_with",
    "rpc_errors",
    "error_from_rpc",
    "flare_error_of",
    "item_error",
    "error_from_item",
]

log = logging.getLogger("flare.grpc")

CODE_KEY = "flare-error-code"
DETAILS_KEY = "flare-error-details-bin"  # -bin: gRPC carries the value as raw bytes

# Most specific first: BackendUnavailable must win over its base BackendError.
_STATUS: tuple[tuple[type[FlareError], grpc.StatusCode], ...] = (
    (InvalidInput, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (Conflict, grpc.StatusCode.ABORTED),
    (Forbidden, grpc.StatusCode.PERMISSION_DENIED),
    (Unauthorized, grpc.StatusCode.UNAUTHENTICATED),
    (RateLimited, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (Busy, grpc.StatusCode.RESOURCE_EXHAUSTED),  # its code in the metadata tells it from RateLimited
    (Rejected, grpc.StatusCode.FAILED_PRECONDITION),
    (TooLarge, grpc.StatusCode.OUT_OF_RANGE),
    (CompactedError, grpc.StatusCode.OUT_OF_RANGE),
    (BackendUnavailable, grpc.StatusCode.UNAVAILABLE),
    (BackendError, grpc.StatusCode.INTERNAL),
)

# Without Flare metadata: the error the status code most plausibly means.
_FALLBACK: dict[grpc.StatusCode, type[FlareError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidInput,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: Conflict,
    grpc.StatusCode.ABORTED: Conflict,
    grpc.StatusCode.PERMISSION_DENIED: Forbidden,
    grpc.StatusCode.UNAUTHENTICATED: Unauthorized,
    grpc.StatusCode.RESOURCE_EXHAUSTED: RateLimited,
    grpc.StatusCode.FAILED_PRECONDITION: Rejected,
    grpc.StatusCode.OUT_OF_RANGE: TooLarge,
    # The peer is down, restarting, or too slow: the caller may retry elsewhere or later.
    grpc.StatusCode.UNAVAILABLE: BackendUnavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: BackendUnavailable,
    grpc.StatusCode.CANCELLED: BackendUnavailable,
}


def _by_code() -> dict[str, type[FlareError]]:
    found: dict[str, type[FlareError]] = {}
    pending: list[type[FlareError]] = [FlareError]
    while pending:
        kind = pending.pop()
        if kind.__module__ == flare_errors.__name__:  # only the public vocabulary, not test subclasses
            found.setdefault(kind.code, kind)
        pending.extend(kind.__subclasses__())
    return found


_BY_CODE = _by_code()


def status_for(exc: FlareError) -> grpc.StatusCode:
    for kind, status in _STATUS:
        if isinstance(exc, kind):
            return status
    return grpc.StatusCode.INTERNAL


def _details_json(exc: FlareError) -> bytes:
    # default=str: details are meant to be plain values; anything exotic (an exception
    # inside pydantic errors) degrades to its text instead of failing the whole reply.
    return orjson.dumps(exc.details, default=str) if exc.details else b""


def error_metadata(exc: FlareError) -> tuple[tuple[str, str | bytes], ...]:
    metadata: list[tuple[str, str | bytes]] = [(CODE_KEY, exc.code)]
    if exc.details:
        metadata.append((DETAILS_KEY, _details_json(exc)))
    return tuple(metadata)


async def abort_with(context: grpc.aio.ServicerContext, exc: FlareError) -> None:
    """End the RPC with `exc` (always raises, like context.abort)."""
    await context.abort(status_for(exc), exc.message, trailing_metadata=error_metadata(exc))


_Handler = TypeVar("_Handler", bound=Callable[..., Awaitable[Any]])


def rpc_errors(method: _Handler) -> _Handler:
    """Decorate an async servicer method: Flare errors become statuses with metadata."""

    @functools.wraps(method)
    async def handler(self: object, request: object, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await method(self, request, context)
        except Exception as exc:
            await abort_with(context, flare_error_of(exc, method.__qualname__))

    return handler  # type: ignore[return-value]


def flare_error_of(exc: Exception, where: str) -> FlareError:
    """What a server answers for `exc` raised in `where` (a method's qualified name)."""
    if isinstance(exc, FlareError):
        return exc
    if isinstance(exc, (TypeError, ValueError)):
        # From decoding a request (bad JSON body) or a service's own argument checks
        # (conversation_kind raises ValueError): the caller's input, not a server fault,
        # and a Python exception type cannot cross the wire anyway.
        return InvalidInput(f"bad request: {exc}")
    log.error("unhandled error in %s", where, exc_info=exc)
    return FlareError(f"internal error in {where.rpartition('.')[2]}")  # without leaking the text


def item_error(exc: Exception, where: str) -> common_pb2.ItemError:
    """One batch item's error, as a batch reply carries it."""
    error = flare_error_of(exc, where)
    return common_pb2.ItemError(code=error.code, message=error.message, details_json=_details_json(error))


def error_from_item(item: common_pb2.ItemError) -> FlareError:
    """The Flare error a batch item's ItemError stands for (the same as error_from_rpc's)."""
    details = _details(item.details_json) if item.details_json else {}
    error = _rebuild(item.code, item.message, details)
    # An unknown code (a newer server): still a failure of the peer, with its message.
    return error if error is not None else BackendError(item.message or f"failed with {item.code}")


def _rebuild(code: str | None, message: str, details: dict[str, Any]) -> FlareError | None:
    kind = _BY_CODE.get(code) if code else None
    if kind is None:
        return None
    try:
        return kind(message, **details)
    except TypeError:  # details that no longer fit the constructor (version skew)
        return kind(message) if kind is not CompactedError else FlareError(message, **details)


def error_from_rpc(exc: grpc.aio.AioRpcError, what: str) -> FlareError:
    """The Flare error an AioRpcError stands for; `what` names the peer for messages."""
    status = exc.code()
    message = exc.details() or ""
    code, details = _read_metadata(exc)
    rebuilt = _rebuild(code, message, details)
    if rebuilt is not None:
        return rebuilt
    fallback = _FALLBACK.get(status, BackendError)
    if fallback is RateLimited and "larger than max" in message:
        fallback = TooLarge  # gRPC's own message-size limit, not a Flare rate limit
    if fallback is BackendUnavailable:
        return BackendUnavailable(f"{what} unavailable ({status.name}): {message}".rstrip(": "))
    return fallback(message or f"{what} failed with {status.name}")


def _read_metadata(exc: grpc.aio.AioRpcError) -> tuple[str | None, dict[str, Any]]:
    code: str | None = None
    details: dict[str, Any] = {}
    for key, value in exc.trailing_metadata() or ():
        if key == CODE_KEY:
            code = value.decode() if isinstance(value, bytes) else value
        elif key == DETAILS_KEY:
            details = _details(value) or details
    return code, details


def _details(data: bytes | str) -> dict[str, Any]:
    try:
        decoded = orjson.loads(data)
    except orjson.JSONDecodeError:
        return {}
    return decoded if isinstance(decoded, dict) else {}
