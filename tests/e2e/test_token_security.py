"""Tokens are not interchangeable, instances need a role of their own, and tokens can be
revoked (issue 10 items 7, 8, 9). Real sockets: the gateway's WebSocket port and the
control plane's gRPC port, in the monolith and in the split deployment (where a separate
gateway process learns revocations from the ConfigStore's watch)."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from websockets.asyncio.client import connect

from controlplane.client import AdminClient
from controlplane.messages import Hello
from controlplane.transport import GrpcConnector
from flarectl.exitcodes import ExitCode
from flarectl.main import app
from services.common import codec
from services.common.auth import issue_token, peek_token_id
from services.common.errors import Forbidden, Unauthorized
from tests.cli_runner import run_cli

from .wsclient import WsClient


def _cp_address(flare) -> str:
    return flare.monolith.controlplane_address if flare.monolith is not None else flare.split.controlplane_address


def _admin_token(flare) -> str:
    if flare.monolith is not None:
        return (flare.monolith.data_dir / "admin.token").read_text().strip()
    return flare.admin_token


async def _flarectl(flare, *args: str, token: str | None = None):
    env = {"FLARE_CONTROLPLANE": _cp_address(flare), "FLARECTL_CONFIG": "/nonexistent",
           "FLARE_TOKEN": token if token is not None else _admin_token(flare)}
    return await asyncio.to_thread(run_cli, app, args, env=env)


async def _refusal(url: str, token: str) -> tuple[dict, int | None]:
    """The error frame and close code a gateway answers a login with."""
    async with connect(f"{url}?token={token}&device_id=d1", open_timeout=10) as ws:
        frame = codec.loads(await asyncio.wait_for(ws.recv(), 5))
        with pytest.raises(Exception):
            await asyncio.wait_for(ws.recv(), 5)
        return frame, ws.close_code


# -- item 7: audiences ------------------------------------------------------------------------

async def test_an_operator_token_does_not_log_in_to_the_gateway(flare):
    frame, close_code = await _refusal(flare.gateway_urls[0], _admin_token(flare))
    assert frame == {"type": "error", "code": "unauthorized",
                     "message": "this is a controlplane token; it is not valid for the client"}
    assert close_code == 4001


async def test_a_client_token_does_not_call_the_control_plane(flare):
    client_token = issue_token(flare.secret, "alice")
    async with AdminClient(_cp_address(flare), token=client_token) as admin:
        with pytest.raises(Unauthorized, match="this is a client token; it is not valid for the controlplane"):
            await admin.status()
    result = await _flarectl(flare, "status", token=client_token)
    assert result.exit_code == ExitCode.UNAUTHORIZED
    assert "this is a client token; it is not valid for the controlplane" in result.stderr
    # ... while the same user's client token logs in to the gateway.
    alice = await flare.client("alice")
    assert alice.frames[0]["type"] == "hello"


# -- item 8: instances have a role of their own ---------------------------------------------

async def test_a_viewer_cannot_register_an_instance(flare):
    async with AdminClient(_cp_address(flare), token=_admin_token(flare)) as admin:
        viewer = (await admin.issue_token("viewer"))["token"]
        before = await admin.status()
    evil = Hello(service="router", instance_id="evil-router", address="10.6.6.6:6666", kinds=("routing",),
                 started_at="2026-01-01T00:00:00Z")
    for token, role in ((viewer, "viewer"), (_admin_token(flare), "admin")):
        with pytest.raises(Forbidden, match=f"role {role} may not do this; needs service"):
            async with asyncio.timeout(10):  # before the fix the stream stayed open, pushing documents
                async with GrpcConnector(_cp_address(flare), token=token).connect(evil) as link:
                    async for _ in link.pushes():
                        pass
    async with AdminClient(_cp_address(flare), token=_admin_token(flare)) as admin:
        after = await admin.status()
    # (Compared by content, not count: the deployment's own agents may still be attaching.)
    assert not [i for i in after["instances"] if i["instance_id"] == "evil-router" or "10.6.6.6" in i["address"]]
    assert {i["instance_id"] for i in before["instances"]} <= {i["instance_id"] for i in after["instances"]}
    if flare.monolith is not None:
        kvs, _ = await flare.monolith.configstore.get_prefix("/flare/topology/")
        assert not [kv.key for kv in kvs if "evil" in kv.key]


async def test_a_service_token_subscribes(flare):
    """The positive control: the role instances use does get its documents pushed."""
    token = issue_token(flare.secret, "router/good-router", role="service")
    hello = Hello(service="router", instance_id="good-router", address="in-process", kinds=("routing",),
                  started_at="2026-01-01T00:00:00Z")
    async with GrpcConnector(_cp_address(flare), token=token).connect(hello) as link:
        async with AdminClient(_cp_address(flare), token=_admin_token(flare)) as admin:
            for _ in range(100):
                if "good-router" in {i["instance_id"] for i in (await admin.status())["instances"]}:
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("a service token's Subscribe never showed in the status")
        assert link is not None
    # ... and may do nothing else.
    async with AdminClient(_cp_address(flare), token=token) as admin:
        with pytest.raises(Forbidden, match="role service may not do this; needs viewer"):
            await admin.status()


# -- item 9: revocation -----------------------------------------------------------------------

async def test_a_revoked_operator_token_is_refused(flare):
    async with AdminClient(_cp_address(flare), token=_admin_token(flare)) as admin:
        doomed = await admin.issue_token("operator", subject="leaver")
        kept = await admin.issue_token("operator", subject="stayer")
    assert (await _flarectl(flare, "status", token=doomed["token"])).exit_code == 0

    dry = await _flarectl(flare, "auth", "token", "revoke", doomed["id"], "--dry-run", "-o", "json")
    assert dry.exit_code == 0 and json.loads(dry.stdout)["dry_run"] is True
    assert (await _flarectl(flare, "status", token=doomed["token"])).exit_code == 0  # a dry run changed nothing
    unconfirmed = await _flarectl(flare, "auth", "token", "revoke", doomed["id"])
    assert unconfirmed.exit_code == ExitCode.ABORTED and "refusing without --yes" in unconfirmed.stderr

    revoked = await _flarectl(flare, "auth", "token", "revoke", doomed["id"], "--yes", "-o", "json")
    assert revoked.exit_code == 0, revoked.output
    out = json.loads(revoked.stdout)
    assert (out["kind"], out["id"], out["already"], out["dry_run"]) == ("token", doomed["id"], False, False)

    refused = await _flarectl(flare, "status", token=doomed["token"])
    assert refused.exit_code == ExitCode.UNAUTHORIZED and "token revoked" in refused.stderr
    assert (await _flarectl(flare, "status", token=kept["token"])).exit_code == 0  # only that one
    again = await _flarectl(flare, "auth", "token", "revoke", doomed["token"], "--yes", "-o", "json")  # by token
    assert json.loads(again.stdout)["already"] is True
    if flare.monolith is not None:  # where it is kept: by id, under a lease now that the expiry is known
        kv = await flare.monolith.configstore.get(f"/flare/revocations/tokens/{doomed['id']}")
        assert kv is not None and kv.lease != 0 and json.loads(kv.value)["expires_at"] == doomed["expires_at"]


async def test_a_revoked_user_is_disconnected_and_only_new_tokens_work(flare):
    old_token = issue_token(flare.secret, "alice")
    alice = await flare.client("alice", token=old_token)
    bob = await flare.client("bob")
    time.sleep(0.002)  # the old token's iat is strictly before the revoke's not-before

    dry = await _flarectl(flare, "token", "revoke", "alice", "--dry-run", "-o", "json")
    assert dry.exit_code == 0 and json.loads(dry.stdout)["dry_run"] is True
    await asyncio.sleep(0.3)
    assert alice.ws.close_code is None  # still connected after a dry run

    result = await _flarectl(flare, "token", "revoke", "alice", "--yes", "-o", "json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert (out["kind"], out["id"]) == ("user", "alice") and out["not_before"] > 0
    if flare.monolith is not None:
        kv = await flare.monolith.configstore.get("/flare/revocations/users/alice")
        assert json.loads(kv.value)["not_before"] == out["not_before"]

    # The open connection is told and closed (in split: by a gateway that learnt it by watch).
    await alice.wait_for(lambda f: f.get("type") == "error" and f.get("code") == "token_revoked", timeout=10)
    for _ in range(100):
        if alice.ws.close_code is not None:
            break
        await asyncio.sleep(0.05)
    assert alice.ws.close_code == 4001

    for url in flare.gateway_urls:  # every gateway refuses the old token
        frame, code = await _refusal(url, old_token)
        assert frame["code"] == "token_revoked" and code == 4001, frame
    fresh = await flare.client("alice", "phone2")  # a token issued after the revoke
    assert fresh.frames[0]["type"] == "hello"
    await fresh.send("back again", to="bob")
    await bob.wait_for(lambda f: f.get("type") == "message" and f.get("body") == "back again")
    assert bob.ws.close_code is None  # nobody else was touched


async def test_revoke_arguments_are_checked(flare):
    bad_user = await _flarectl(flare, "token", "revoke", "a:b", "--yes")
    assert bad_user.exit_code == ExitCode.INVALID and "user may not contain ':'" in bad_user.stderr
    bad_id = await _flarectl(flare, "auth", "token", "revoke", "not a token id", "--yes")
    assert bad_id.exit_code == ExitCode.INVALID and "is not a token id" in bad_id.stderr
    async with AdminClient(_cp_address(flare), token=_admin_token(flare)) as admin:
        viewer = (await admin.issue_token("viewer"))["token"]
    denied = await _flarectl(flare, "token", "revoke", "alice", "--yes", token=viewer)
    assert denied.exit_code == ExitCode.UNAUTHORIZED and "needs admin" in denied.stderr


async def test_a_service_token_speaks_for_its_own_instance_and_revoking_it_ends_its_stream(flare):
    token = issue_token(flare.secret, "router/r-1", role="service")
    other = Hello(service="router", instance_id="r-2", address="in-process", kinds=("routing",), started_at="x")
    with pytest.raises(Forbidden, match="this service token is for router/r-1, not router/r-2"):
        async with asyncio.timeout(10):
            async with GrpcConnector(_cp_address(flare), token=token).connect(other) as link:
                async for _ in link.pushes():
                    pass

    own = Hello(service="router", instance_id="r-1", address="in-process", kinds=("routing",), started_at="x")
    token_id = peek_token_id(token)
    async with GrpcConnector(_cp_address(flare), token=token).connect(own) as link:
        pushes = link.pushes()
        revoked = await _flarectl(flare, "auth", "token", "revoke", token_id, "--yes")
        assert revoked.exit_code == 0, revoked.output
        async with asyncio.timeout(10):  # the open stream ends (no more documents) ...
            async for _ in pushes:
                pass
    with pytest.raises(Unauthorized, match="token revoked"):  # ... and the reconnect is refused
        async with asyncio.timeout(10):
            async with GrpcConnector(_cp_address(flare), token=token).connect(own) as link:
                async for _ in link.pushes():
                    pass
