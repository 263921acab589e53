"""Root fixtures. Real servers come from tests/infra (started on demand, session-scoped)."""

from __future__ import annotations

import os

# Before anything imports grpc: the infra helpers fork (subprocess with user/group set, so
# no vfork) while gRPC's threads run in this process, and gRPC's fork handlers then crashed
# the child before its exec (psql exited -11, "epoll_wait error: Bad file descriptor", CI
# 2026-12-07). No test forks a process that goes on using gRPC without exec.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

import pytest  # noqa: E402

from tests.cli_runner import run_cli

pytest_plugins = ["tests.infra.fixtures"]


@pytest.fixture
def require_servers() -> bool:
    # CI sets FLARE_REQUIRE_SERVERS=1: a server that cannot start is then an error, not a skip.
    return os.environ.get("FLARE_REQUIRE_SERVERS") == "1"


@pytest.fixture
def cli():
    """flarectl in-process, the same terminal for every test (tests/cli_runner.py).

        result = cli("status", "-o", "json", env={"FLARE_TOKEN": t})
        result = cli("loadtest", "--rate", "0", app=loadtest_app)   # another Typer app
    """

    def invoke(*args: str, app=None, env=None, input: str | None = None):
        if app is None:
            from flarectl.main import app
        return run_cli(app, args, env=env, input=input)

    return invoke
