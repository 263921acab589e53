"""`flarectl context set/use/list` and how the target is resolved (no server needed)."""

from __future__ import annotations

import pytest

from flarectl.contexts import resolve_target


@pytest.fixture
def cli(cli, tmp_path, monkeypatch):
    """The root `cli` runner, with contexts in a file of this test's own and no target set."""
    monkeypatch.setenv("FLARECTL_CONFIG", str(tmp_path / "contexts.yaml"))
    monkeypatch.delenv("FLARE_CONTROLPLANE", raising=False)
    monkeypatch.delenv("FLARE_TOKEN", raising=False)
    return cli


def test_contexts_are_saved_listed_and_chosen(cli, tmp_path, monkeypatch):
    path = tmp_path / "contexts.yaml"
    result = cli("context", "set", "prod", "--controlplane", "10.0.0.5:8702", "--token", "tok-prod")
    assert (result.exit_code, result.stdout) == (0, f"context prod saved in {path} (current)\n")
    assert cli("context", "set", "dev", "--controlplane", "127.0.0.1:9000").exit_code == 0
    assert oct(path.stat().st_mode & 0o777) == "0o600"

    listed = cli("context", "list", "-o", "json")
    assert listed.exit_code == 0
    assert '"token": "set"' in listed.stdout and "tok-prod" not in listed.stdout

    assert resolve_target().address == "10.0.0.5:8702"
    assert cli("context", "use", "dev").stdout == "current context is dev\n"
    assert resolve_target().address == "127.0.0.1:9000"
    assert resolve_target("prod").token == "tok-prod"
    monkeypatch.setenv("FLARE_CONTROLPLANE", "1.2.3.4:1")
    monkeypatch.setenv("FLARE_TOKEN", "env-token")
    assert (resolve_target("prod").address, resolve_target("prod").token) == ("1.2.3.4:1", "env-token")

    missing = cli("context", "use", "nope")
    assert missing.exit_code == 7 and "no context named 'nope'" in missing.stderr


def test_an_unreachable_control_plane_exits_4_on_stderr(cli, monkeypatch):
    monkeypatch.setenv("FLARE_CONTROLPLANE", "127.0.0.1:1")
    monkeypatch.setenv("FLARE_TOKEN", "x")
    result = cli("config", "get", "filter-rules")
    assert result.exit_code == 4
    assert result.stdout == ""
    assert result.stderr.startswith("error: control plane at 127.0.0.1:1 unreachable")
