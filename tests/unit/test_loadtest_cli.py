"""flarectl loadtest refuses bad parameters with distinct exit codes and a message naming the option."""

from __future__ import annotations

import socket

import pytest
import typer

from flarectl.commands.loadtest import COMMANDS
from flarectl.exitcodes import ExitCode
from flarectl.loadtest.params import build_params, parse_duration

app = typer.Typer()
app.callback()(lambda: None)  # a group, so the command is invoked by name as under flarectl
for _name, _fn in COMMANDS.items():
    app.command(_name)(_fn)


@pytest.fixture
def run(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./.flare/token.secret unless a test makes one
    return lambda *args: cli("loadtest", *args, app=app)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SECRET = ("--token-secret", "s3cret")


@pytest.mark.parametrize(("args", "message"), [
    (("--rate", "0"), "error: --rate must be > 0 (got 0.0)\n"),
    (("--rate", "-5"), "error: --rate must be > 0 (got -5.0)\n"),
    (("--users", "1"), "error: --users must be at least 2 (got 1): messages need a sender and a recipient\n"),
    (("--duration", "0s"), "error: --duration must be > 0 (got 0.0)\n"),
    (("--duration", "soon"), "error: --duration: not a duration: 'soon' (use e.g. 50ms, 2s, 1m)\n"),
    (("--offline-fraction", "1"), "error: --offline-fraction: Input should be less than 1\n"),
    (("--users", "3", "--groups", "1", "--group-size", "4"), "error: --group-size: 4 is larger than --users 3\n"),
    (("--max-p99", "fast"), "error: --max-p99: not a duration: 'fast' (use e.g. 50ms, 2s, 1m)\n"),
    (("--gateway", "http://127.0.0.1:8700/ws"),
     "error: --gateway: must be a ws:// or wss:// URL with a host, got 'http://127.0.0.1:8700/ws'\n"),
    (("--gateway", "ws://10.1.2.3:8700/ws"),
     "error: --gateway: 10.1.2.3 is not a loopback address; pass --allow-remote to load-test another host\n"),
])
def test_invalid_parameters_exit_invalid_and_name_the_option(run, args, message) -> None:
    result = run(*args, *SECRET)
    assert result.exit_code == ExitCode.INVALID
    assert result.stdout == ""
    assert result.stderr == message


def test_unparseable_number_is_a_usage_error(run) -> None:
    result = run("--rate", "lots", *SECRET)
    assert result.exit_code == ExitCode.USAGE
    assert "Invalid value for '--rate'" in result.stderr


def test_missing_token_secret_is_unauthorized(run) -> None:
    result = run("--rate", "10")
    assert result.exit_code == ExitCode.UNAUTHORIZED
    assert result.stderr == (
        "error: --token-secret-file: cannot read .flare/token.secret (No such file or directory); "
        "pass --token-secret-file or --token-secret (the server's token secret)\n"
    )


def test_unreachable_gateway_is_unavailable(run) -> None:
    port = free_port()
    result = run("--gateway", f"ws://127.0.0.1:{port}/ws", "--rate", "10", "--duration", "1s", *SECRET)
    assert result.exit_code == ExitCode.UNAVAILABLE
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: cannot reach the gateway at ws://127.0.0.1:{port}/ws: cannot connect:")


def test_scenario_file_is_read_and_flags_override_it(tmp_path) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text("users: 40\ndevices-per-user: 2\nrate: 250\nduration: 1m\nmax_p99: 50ms\nmin_rate: 90%\n")
    params = build_params(scenario=scenario, rate=300.0)
    assert (params.users, params.devices_per_user, params.rate, params.duration) == (40, 2, 300.0, 60.0)
    assert params.max_p99 == pytest.approx(0.05)
    assert params.min_rate == pytest.approx(0.9)


def test_bad_scenario_file(run, tmp_path) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text("users: 40\nspeed: 9000\n")
    result = run("--scenario", str(scenario), *SECRET)
    assert result.exit_code == ExitCode.INVALID
    assert result.stderr == "error: unknown scenario key 'speed'\n"
    scenario.write_text("rate: 0\n")
    result = run("--scenario", str(scenario), *SECRET)
    assert (result.exit_code, result.stderr) == (ExitCode.INVALID, "error: --rate must be > 0 (got 0)\n")


def test_durations() -> None:
    assert parse_duration("50ms") == pytest.approx(0.05)
    assert parse_duration("2m") == 120.0
    assert parse_duration(3) == 3.0
    assert parse_duration(50, default_unit="ms") == pytest.approx(0.05)
    # a latency limit without a unit is in milliseconds, with one it means what it says
    assert build_params(max_p99="50", token_secret="x").max_p99 == pytest.approx(0.05)
    assert build_params(max_p99="0.2s", token_secret="x").max_p99 == pytest.approx(0.2)
