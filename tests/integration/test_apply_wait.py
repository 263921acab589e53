"""`flarectl config apply --wait` against a real daemon with agents answering: every ACK is
exit 0, a NACK is exit 1 with its reason (and --rollback-on-nack restores the previous
version), an instance that never answers is exit 12 (TIMEOUT) naming it."""

from __future__ import annotations

import asyncio
import re

import pytest
import yaml
from typer.testing import CliRunner

from controlplane.agent import ConfigAgent
from controlplane.api import serve_grpc
from controlplane.daemon import ControlPlane
from flarectl.main import app
from services.backends.registry import open_configstore
from services.common.auth import issue_token
from services.common.errors import InvalidInput

pytestmark = pytest.mark.timeout(90)


async def _limit_one(document: dict) -> None:
    if len(document.get("sensitive_words", [])) > 1:
        raise InvalidInput(f"sensitive_words: {len(document['sensitive_words'])} words exceed this instance's limit of 1")


async def _accept(document: dict) -> None:
    return None


class _Hang:
    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def __call__(self, document: dict) -> None:
        if any(w.get("word") == "hang" for w in document.get("sensitive_words", [])):
            await self.release.wait()


@pytest.fixture
async def deployment(tmp_path):
    cp = ControlPlane(open_configstore(f"sqlite:///{tmp_path}/config.db"), b"secret", health_tick_s=0.2)
    await cp.start()
    address = f"127.0.0.1:{await serve_grpc(cp, '127.0.0.1', 0)}"
    hang = _Hang()
    agents = [ConfigAgent("filter", "filter-1", "in-process", {"filter-rules": _accept}, tmp_path / "a1", cp),
              ConfigAgent("filter", "filter-2", "in-process", {"filter-rules": _limit_one}, tmp_path / "a2", cp),
              ConfigAgent("filter", "filter-3", "in-process", {"filter-rules": hang}, tmp_path / "a3", cp)]
    for agent in agents:
        await agent.start()
    token = issue_token(b"secret", "oncall", ttl_s=300, role="operator")

    def cli(*args: str):
        env = {"NO_COLOR": "1", "COLUMNS": "200", "FLARE_CONTROLPLANE": address, "FLARE_TOKEN": token,
               "FLARECTL_CONFIG": "/nonexistent"}
        return CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)

    def document(name: str, words: list[str]) -> str:
        path = tmp_path / name
        path.write_text(yaml.safe_dump({"kind": "filter-rules", "spec": {"sensitive_words": words}}))
        return str(path)

    yield cp, cli, document, hang
    hang.release.set()
    for agent in agents:
        await agent.stop()
    await cp.stop()


async def test_all_acked_exits_0_and_says_so(deployment):
    cp, cli, document, _ = deployment
    result = await asyncio.to_thread(cli, "config", "apply", "-f", document("v1.yaml", ["alpha"]), "--wait")
    assert result.exit_code == 0, result.output
    assert result.stdout == "filter-rules v1 applied (was v0)\nfilter-rules v1: 3/3 ACKed\n"
    # The deployment runs in this process, so whatever it logs (records, a logged traceback after
    # a long suite) shares the captured stderr: read the CLI's progress lines by their form.
    progress = re.findall(r"^  (ACK|NACK|PENDING) (\S+) filter-rules v1\b", result.stderr, flags=re.M)
    assert sorted(progress) == [("ACK", "filter/filter-1"), ("ACK", "filter/filter-2"),
                                ("ACK", "filter/filter-3")], result.stderr


async def test_a_nack_exits_1_with_the_reason_and_rollback_restores_the_previous_version(deployment):
    cp, cli, document, _ = deployment
    assert (await asyncio.to_thread(cli, "config", "apply", "-f", document("v1.yaml", ["alpha"]), "--wait")).exit_code == 0
    result = await asyncio.to_thread(cli, "config", "apply", "-f", document("v2.yaml", ["alpha", "beta"]),
                                     "--wait", "--rollback-on-nack")
    assert result.exit_code == 1, result.output
    assert "  NACK filter/filter-2 filter-rules v2: sensitive_words: 2 words exceed this instance's limit of 1" \
        in result.stderr
    assert result.stdout.splitlines() == [
        "filter-rules v2 applied (was v1)",
        "filter-rules v2: 2/3 ACKed, 1 NACKed",
        "rolled back: filter-rules v3 restores v1",
        "filter-rules v3: 3/3 ACKed"]
    assert cp.desired.served["filter-rules"].spec["sensitive_words"] == [{"word": "alpha"}]
    assert cp.desired.served["filter-rules"].comment == "rollback to v1 after a NACK of v2"


async def test_an_instance_that_never_answers_is_a_timeout_naming_it(deployment):
    cp, cli, document, hang = deployment
    result = await asyncio.to_thread(cli, "config", "apply", "-f", document("v1.yaml", ["hang"]), "--wait",
                                     "--timeout", "1500ms", "-o", "json")
    assert result.exit_code == 12, result.output
    import json

    answers = {a["instance"]: a["answer"] for a in json.loads(result.stdout)["wait"]["instances"]}
    assert answers == {"filter/filter-1": "ACK", "filter/filter-2": "ACK", "filter/filter-3": "PENDING"}
    hang.release.set()
