"""A batched call channel between two Flare processes of one node (the core and a gateway worker).

Each end sends records; everything one end sends during one event-loop tick leaves as
one length-prefixed batch (a 4-byte big-endian length, then the pickled list of records),
so at full rate a thousand pushes and calls cost one write and one read syscall, not a
thousand. Records:

    ("c", call_id, target, method, args, kwargs)   a call; the other end answers with "r"
    ("n", 0, target, method, args, kwargs)         a notification; nothing comes back
    ("s", call_id, target, method, args, kwargs)   a call with progress: the method gets a
                                                   callable as its last argument, and each
                                                   value it is given goes back as a "p"
    ("p", call_id, value)                          progress of call_id, before its "r"
    ("r", call_id, ok, value)                      a reply: the result, or an error triple

A target is a named object the receiving end exposes, with the method names it allows;
anything else is refused (InvalidInput) without being looked up. Errors cross as
(class name, message, details) and are rebuilt as the same FlareError subclass; any other
exception becomes a BackendError naming it.

Why pickle: both ends are the same code at the same version, started by one supervisor
and joined by a socketpair the child inherits (no address anyone else could connect to),
and pickle carries Message, Session and Push as they are, at C speed, with each distinct
bytes object (a frame fanned out to many devices) written once per batch.

Limits: at most `max_in_flight` calls awaiting replies (beyond: BackendUnavailable, the
caller sheds), at most `max_batch_bytes` in one batch read (a bigger one closes the
channel), and a write buffer above `max_buffer_bytes` fails new calls until it drains.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import pickle
import struct
from collections.abc import Callable, Mapping
from types import CoroutineType
from typing import Any

from . import errors as _errors
from .errors import BackendError, BackendUnavailable, FlareError, InvalidInput

__all__ = ["Channel", "Remote", "ChannelClosed"]

log = logging.getLogger("flare.channel")

_LENGTH = struct.Struct(">I")


class ChannelClosed(BackendUnavailable):
    """The other process went away (or the channel was closed)."""


def _error_triple(exc: BaseException) -> tuple[str, str, dict]:
    if isinstance(exc, FlareError):
        return type(exc).__name__, exc.message, dict(exc.details)
    return "BackendError", f"{type(exc).__name__}: {exc}", {}


def _rebuild_error(triple: tuple[str, str, dict]) -> FlareError:
    name, message, details = triple
    cls = getattr(_errors, name, None)
    if not (isinstance(cls, type) and issubclass(cls, FlareError)):
        cls = BackendError
    exc = cls.__new__(cls)
    FlareError.__init__(exc, message, **details)
    for key, value in details.items():  # e.g. CompactedError.compact_revision
        setattr(exc, key, value)
    return exc


class Channel:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                 targets: Mapping[str, tuple[object, frozenset[str]]] | None = None, name: str = "channel",
                 max_in_flight: int = 50_000, max_batch_bytes: int = 256 * 1024 * 1024,
                 max_buffer_bytes: int = 64 * 1024 * 1024, flush_window_s: float = 0.001) -> None:
        """`targets`: name -> (object, allowed method names), what the other end may call.
        `flush_window_s`: at most one batch per window. A record after a quiet spell leaves
        at the end of its tick; under load, records gather for up to the window, because
        each write (and the wakeup on the other side) costs far more than a record."""
        self._reader = reader
        self._writer = writer
        self._targets = dict(targets or {})
        self.name = name
        self._max_in_flight = max_in_flight
        self._max_batch_bytes = max_batch_bytes
        self._max_buffer_bytes = max_buffer_bytes
        self._out: list[tuple] = []
        self._flush_scheduled = False
        self._flush_window = flush_window_s
        self._last_flush = 0.0
        self._next_id = 0
        self._waiting: dict[int, asyncio.Future] = {}
        self._progress: dict[int, Callable[[Any], None]] = {}
        self._closed = False
        self._reader_task: asyncio.Task | None = None
        self.on_close: Callable[[], None] | None = None

    def expose(self, name: str, target: object, methods: frozenset[str] | set[str]) -> None:
        self._targets[name] = (target, frozenset(methods))

    def start(self) -> None:
        self._reader_task = asyncio.get_running_loop().create_task(self._read_forever(), name=f"{self.name}-reader")

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def in_flight(self) -> int:
        return len(self._waiting)

    # -- sending -------------------------------------------------------------------------
    def _send(self, record: tuple) -> None:
        if self._closed:
            raise ChannelClosed(f"{self.name} is closed")
        self._out.append(record)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop = asyncio.get_running_loop()
            wait = self._last_flush + self._flush_window - loop.time()
            if wait > 0:
                loop.call_later(wait, self._flush)
            else:
                loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        self._last_flush = asyncio.get_running_loop().time()
        records, self._out = self._out, []
        if not records or self._closed:
            return
        body = pickle.dumps(records, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            self._writer.write(_LENGTH.pack(len(body)) + body)
        except (ConnectionError, RuntimeError) as exc:
            self._fail_all(ChannelClosed(f"{self.name}: {exc}"))

    def _check_room(self) -> None:
        if self._closed:
            raise ChannelClosed(f"{self.name} is closed")
        if len(self._waiting) >= self._max_in_flight:
            raise BackendUnavailable(f"{self.name}: {len(self._waiting)} calls in flight; retry")
        transport = self._writer.transport
        if transport.get_write_buffer_size() > self._max_buffer_bytes:
            raise BackendUnavailable(f"{self.name}: the other side is not reading; retry")

    async def call(self, target: str, method: str, args: tuple = (), kwargs: dict | None = None, *,
                   progress: Callable[[Any], None] | None = None) -> Any:
        """`progress`: the remote method is given a callable as its last argument, and
        `progress` is called here with each value it passes (in order, all before the
        result). One call instead of two where the caller needs an early answer, e.g. the
        gateway's `received` from router.submit."""
        self._check_room()
        self._next_id += 1
        call_id = self._next_id
        future = asyncio.get_running_loop().create_future()
        self._waiting[call_id] = future
        if progress is not None:
            self._progress[call_id] = progress
        try:
            self._send(("s" if progress is not None else "c", call_id, target, method, args, kwargs or {}))
            return await future
        finally:
            self._waiting.pop(call_id, None)
            if progress is not None:
                self._progress.pop(call_id, None)

    def notify(self, target: str, method: str, args: tuple = (), kwargs: dict | None = None) -> None:
        """Fire and forget; dropped (logged) when the channel is closed."""
        if self._closed:
            return
        self._send(("n", 0, target, method, args, kwargs or {}))

    # -- receiving -----------------------------------------------------------------------
    async def _read_forever(self) -> None:
        reader = self._reader
        try:
            while True:
                (size,) = _LENGTH.unpack(await reader.readexactly(4))
                if size > self._max_batch_bytes:
                    raise BackendError(f"{self.name}: a {size}-byte batch is over the limit")
                for record in pickle.loads(await reader.readexactly(size)):
                    self._dispatch(record)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a broken peer ends the channel, never the process
            log.exception("%s: reader failed", self.name)
        finally:
            self._fail_all(ChannelClosed(f"{self.name}: the other process went away"))

    def _dispatch(self, record: tuple) -> None:
        kind = record[0]
        if kind == "r":
            _, call_id, ok, value = record
            future = self._waiting.get(call_id)
            if future is not None and not future.done():
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(_rebuild_error(value))
            return
        if kind == "p":
            _, call_id, value = record
            progress = self._progress.get(call_id)
            if progress is not None:
                try:
                    progress(value)
                except Exception:  # noqa: BLE001 - the caller's callback, not the channel, failed
                    log.exception("%s: progress callback of call %d failed", self.name, call_id)
            return
        _, call_id, target_name, method, args, kwargs = record
        entry = self._targets.get(target_name)
        if entry is None or method not in entry[1]:
            if kind != "n":
                self._reply(call_id, False, ("InvalidInput", f"{target_name}.{method} is not callable here", {}))
            return
        if kind == "s":
            args = (*args, functools.partial(self._send_progress, call_id))
            kind = "c"
        try:
            result = getattr(entry[0], method)(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - every failure goes back to the caller
            if kind == "c":
                self._reply(call_id, False, _error_triple(exc))
            else:
                log.warning("%s: notification %s.%s failed", self.name, target_name, method, exc_info=True)
            return
        # A coroutine (every async service method) is told apart by its type first:
        # inspect.isawaitable and ensure_future are Python-level checks, and this runs for
        # every call (py-spy: ~6 % of the core process at full rate).
        if type(result) is CoroutineType or inspect.isawaitable(result):
            asyncio.get_running_loop().create_task(self._finish(kind, call_id, target_name, method, result))
        elif kind == "c":
            self._reply(call_id, True, result)

    async def _finish(self, kind: str, call_id: int, target: str, method: str, awaitable) -> None:
        try:
            result = await awaitable
        except Exception as exc:  # noqa: BLE001
            if kind == "c":
                self._reply(call_id, False, _error_triple(exc))
            else:
                log.warning("%s: notification %s.%s failed", self.name, target, method, exc_info=True)
            return
        if kind == "c":
            self._reply(call_id, True, result)

    def _send_progress(self, call_id: int, value: object) -> None:
        with contextlib.suppress(ChannelClosed):
            self._send(("p", call_id, value))

    def _reply(self, call_id: int, ok: bool, value: object) -> None:
        with contextlib.suppress(ChannelClosed):
            self._send(("r", call_id, ok, value))

    # -- closing -------------------------------------------------------------------------
    def _fail_all(self, exc: FlareError) -> None:
        if self._closed:
            return
        self._closed = True
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(exc)
        self._waiting.clear()
        with contextlib.suppress(Exception):
            self._writer.close()
        if self.on_close is not None:
            self.on_close()

    async def close(self) -> None:
        if not self._closed:
            self._flush()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._writer.drain(), 2)
        self._fail_all(ChannelClosed(f"{self.name} is closed"))
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader_task


class Remote:
    """A service object on the other end of a channel: `await remote.method(...)` is a call,
    and the names in `notify` are synchronous fire-and-forget methods (e.g. note_ack)."""

    def __init__(self, channel: Channel, target: str, *, notify: frozenset[str] = frozenset()) -> None:
        self._channel = channel
        self._target = target
        self._notify = notify

    def __getattr__(self, method: str):
        # Only reached on the first use of a name: the callable made here is kept on the
        # instance, so every later `remote.method` is a plain attribute read (this ran once
        # per call and per notification before, 1-2 % of a gateway worker).
        if method.startswith("_"):
            raise AttributeError(method)
        channel, target = self._channel, self._target
        if method in self._notify:
            def notification(*args, **kwargs) -> None:
                channel.notify(target, method, args, kwargs)
            made: Callable = notification
        else:
            async def call(*args, **kwargs):
                return await channel.call(target, method, args, kwargs)
            made = call
        self.__dict__[method] = made
        return made
