"""Root fixtures. Real servers come from tests/infra (started on demand, session-scoped)."""

from __future__ import annotations

import os

import pytest

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
