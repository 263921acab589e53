"""ignore_poller_noise: grpc.aio's spurious poller callback errors are dropped, nothing else."""

from __future__ import annotations

import asyncio
import logging

from services.common.grpcio import ignore_poller_noise


class _PollerHandle:
    def __repr__(self) -> str:  # what asyncio shows for grpc's callback handle
        return "<Handle PollerCompletionQueue._handle_events(<_UnixSelectorEventLoop>)()>"


async def test_only_the_pollers_closed_loop_errors_are_dropped(caplog) -> None:
    loop = asyncio.get_running_loop()
    ignore_poller_noise(loop)
    try:
        with caplog.at_level(logging.ERROR, logger="asyncio"):
            loop.call_exception_handler({"message": "Exception in callback", "handle": _PollerHandle(),
                                         "exception": RuntimeError("Event loop is closed")})
            loop.call_exception_handler({"message": "Exception in callback", "handle": _PollerHandle(),
                                         "exception": BlockingIOError(11, "Resource temporarily unavailable")})
            assert caplog.records == []
            loop.call_exception_handler({"message": "Task exception was never retrieved",
                                         "exception": RuntimeError("a real bug")})
            loop.call_exception_handler({"message": "Exception in callback", "handle": _PollerHandle(),
                                         "exception": ValueError("not the known noise")})
        assert [r.exc_info[1].args[0] for r in caplog.records] == ["a real bug", "not the known noise"]
    finally:
        loop.set_exception_handler(None)
