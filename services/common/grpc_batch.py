"""Batch RPCs of the send path: many messages per call, one result per item.

Every message on the split deployment's send path crossed gRPC five times, one unary call
each (Admit, Send, Check, Reserve, Accept), and a unary call costs the same Python work
whatever it carries: py-spy had grpc.aio's call at about a third of the gateway's and the
routers' time. Here a client's concurrent calls of one RPC share a call (`BatchRpc`,
an ItemCoalescer: the first caller goes at once, alone, the callers arriving while it is
in flight go together in the next), and the server answers each item on its own
(`answer_batch`): one item's error fails only its caller, with the same Flare error the
unary call would have raised (grpc_errors.item_error / error_from_item). A failure of the
call itself (deadline, unreachable peer) fails every item of it, as the unary call would
have failed each of them.

One batch per rpc in flight per client: two in flight did better alone on loopback (filter
check at 32 concurrent, bench/grpc_bench.py: 14,000 against 9,800 calls/s) but worse in the
split deployment on two cores, where every process competes for CPU (e2e_bench --split
--rate 300: 123-171 against 164-193 msg/s accepted); so one, and `max_in_flight` to tune.

Bounds: a batch carries at most MAX_BATCH_ITEMS messages and about MAX_BATCH_BYTES of them
(one larger message goes alone), far below the channel's 64 MiB message limit even when
a reply echoes every (masked) body.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

import grpc.aio

from services.common.coalesce import ItemCoalescer
from services.common.errors import BackendError, FlareError
from services.common.metrics import GRPC_BATCH
from services.common.proto import common_pb2

from .grpc_errors import error_from_item, error_from_rpc, item_error, rpc_errors

__all__ = ["MAX_BATCH_ITEMS", "MAX_BATCH_BYTES", "BatchRpc", "answer_batch", "batch_method"]

MAX_BATCH_ITEMS = 256
MAX_BATCH_BYTES = 4 * 1024 * 1024

R = TypeVar("R")  # the reply type of one item (AdmitResponse, Verdict …)


class BatchRpc(Generic[R]):
    """Calls of one batch RPC (`rpc(MessageBatch) -> reply with .results`), batched.

    `await batch_rpc(message_pb)` is the item's own `ok` reply, or raises its Flare error.
    `stub` is read on every call: the client's stub is made with its channel, lazily.
    """

    def __init__(self, stub: Callable[[], Any], service: str, rpc: str, *, what: str, timeout_s: float,
                 max_batch: int = MAX_BATCH_ITEMS, max_bytes: int = MAX_BATCH_BYTES,
                 max_in_flight: int = 1, batch_type: Callable[..., Any] = common_pb2.MessageBatch) -> None:
        """`batch_type(items=[...])` is the request (MessageBatch, or e.g. DeliveredBatch)."""
        self._stub = stub
        self._rpc = rpc
        self._batch_type = batch_type
        self._what = what
        self.timeout_s = timeout_s
        self._coalescer: ItemCoalescer[Any, R] = ItemCoalescer(
            self._call, max_batch=max_batch, max_bytes=max_bytes, size=_size, max_in_flight=max_in_flight,
            on_batch=GRPC_BATCH.labels(f"{service}.{rpc}").observe)

    @property
    def batches(self) -> int:
        return self._coalescer.batches

    def __call__(self, item: Any) -> Awaitable[R]:
        return self._coalescer(item)

    async def _call(self, items: Sequence[Any]) -> list[R | FlareError]:
        method = getattr(self._stub(), self._rpc)
        try:
            reply = await method(self._batch_type(items=items), timeout=self.timeout_s)
        except grpc.aio.AioRpcError as exc:
            return [_caused(error_from_rpc(exc, self._what), exc) for _ in items]
        results = reply.results
        if len(results) != len(items):  # a broken peer: nobody can tell which answer is whose
            error = f"{self._what} answered {len(results)} results for {len(items)} items"
            return [BackendError(error) for _ in items]
        return [_result(result, self._what) for result in results]


def _size(item: Any) -> int:
    return item.ByteSize()


def _caused(error: FlareError, cause: BaseException) -> FlareError:
    # As `raise error_from_rpc(exc) from exc` does on the unary path: failover looks at the
    # cause to tell an unreachable instance (services.wiring.discovery.instance_unreachable).
    error.__cause__ = cause
    return error


def _result(result: Any, what: str) -> Any:
    which = result.WhichOneof("result")
    if which == "ok":
        return result.ok
    if which == "error":
        return error_from_item(result.error)
    return BackendError(f"{what} answered an empty result")


async def answer_batch(items: Sequence[Any], handle: Callable[[Any], Awaitable[Any]],
                       result_type: Callable[..., Any], *, where: str) -> list[Any]:
    """Server side: `handle` each item concurrently, each answer or error in its result.

    `handle` is the unary method's body for one message; `where` names it for the log of
    an unexpected exception (answered as an internal error, like rpc_errors does).
    """

    async def one(item: common_pb2.Message) -> Any:
        try:
            return result_type(ok=await handle(item))
        except Exception as exc:
            return result_type(error=item_error(exc, where))

    if len(items) == 1:  # light load: no task to make
        return [await one(items[0])]
    return list(await asyncio.gather(*(one(item) for item in items)))


def batch_method(handle: str, result_type: Callable[..., Any], response_type: Callable[..., Any]) -> Any:
    """A servicer's batch rpc made from its unary body: `handle` names the servicer's
    method answering one item; each item's reply or error goes in a `result_type`, all of
    them in one `response_type(results=...)`.

        AdmitBatch = batch_method("_admit", pb.AdmitResult, pb.AdmitBatchResponse)
    """

    async def method(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        where = f"{type(self).__name__}.{method.__name__}"
        results = await answer_batch(request.items, getattr(self, handle), result_type, where=where)
        return response_type(results=results)

    class _Named:  # __set_name__ gives the method the rpc's own name, for logs
        def __set_name__(self, owner: type, name: str) -> None:
            method.__name__ = method.__qualname__ = name
            setattr(owner, name, rpc_errors(method))

    return _Named()
