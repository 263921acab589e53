"""AdminClient: the admin API over gRPC, returning plain dicts (what flarectl prints)."""

from __future__ import annotations

import grpc
import grpc.aio

from services.common import codec
from services.common.errors import BackendUnavailable, FlareError
from services.common.grpc_errors import error_from_rpc
from services.common.proto import controlplane_pb2 as pb
from services.common.proto import controlplane_pb2_grpc as pb_grpc

from services.common.documents import MAX_DOCUMENT_BYTES, StoredDocument

__all__ = ["AdminClient", "translate_rpc_error", "document_from_pb", "CHANNEL_OPTIONS", "MAX_MESSAGE_BYTES"]

# A document plus the envelope around it (an apply request, a push, a history page of one).
# gRPC's default of 4 MiB refused a 100k-word filter list that validation accepts.
MAX_MESSAGE_BYTES = MAX_DOCUMENT_BYTES + 1024 * 1024
CHANNEL_OPTIONS = [
    ("grpc.use_local_subchannel_pool", 1),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
]

def translate_rpc_error(exc: grpc.aio.AioRpcError, what: str) -> FlareError:
    """The shared mapping (services.common.grpc_errors), so details survive the wire too;
    an unreachable daemon gets the plain words an operator at a terminal expects."""
    error = error_from_rpc(exc, what)
    if isinstance(error, BackendUnavailable) and exc.code() in (grpc.StatusCode.UNAVAILABLE,
                                                               grpc.StatusCode.DEADLINE_EXCEEDED):
        return BackendUnavailable(f"{what} unreachable: {exc.details() or exc.code().name}")
    return error


def document_from_pb(doc: pb.Document) -> StoredDocument:
    return StoredDocument(kind=doc.kind, version=doc.version, spec=codec.loads(doc.spec_json) if doc.spec_json else {},
                          digest=doc.digest, updated_at=doc.updated_at, updated_by=doc.updated_by, comment=doc.comment)


def _apply_dict(resp: pb.ApplyResponse) -> dict:
    return {"kind": resp.kind, "version": resp.version, "previous_version": resp.previous_version,
            "changed": resp.changed, "dry_run": resp.dry_run, "diff": resp.diff}


class AdminClient:
    def __init__(self, address: str, *, token: str | None = None, timeout_s: float = 10.0) -> None:
        self.address = address
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._timeout = timeout_s
        # A private subchannel pool: gRPC otherwise shares subchannels process-wide, and one
        # left in reconnect backoff by an earlier failed call fails this channel at once.
        self._channel = grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
        self._stub = pb_grpc.ControlPlaneStub(self._channel)

    async def __aenter__(self) -> AdminClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close()

    async def _call(self, method, request):
        try:
            return await method(request, metadata=self._metadata, timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            raise translate_rpc_error(exc, f"control plane at {self.address}") from exc

    async def get(self, kind: str) -> dict:
        return document_from_pb(await self._call(self._stub.GetConfig, pb.GetConfigRequest(kind=kind))).to_dict()

    async def apply(self, manifest: dict, *, expect_version: int | None = None, dry_run: bool = False,
                    comment: str = "") -> dict:
        request = pb.ApplyRequest(manifest_json=codec.dumps_str(manifest), dry_run=dry_run, comment=comment)
        if expect_version is not None:
            request.expect_version = expect_version
        return _apply_dict(await self._call(self._stub.ApplyConfig, request))

    async def history(self, kind: str, *, limit: int = 0) -> list[dict]:
        resp = await self._call(self._stub.History, pb.HistoryRequest(kind=kind, limit=limit))
        return [document_from_pb(d).to_dict() for d in resp.entries]

    async def rollback(self, kind: str, to_version: int, *, dry_run: bool = False) -> dict:
        request = pb.RollbackRequest(kind=kind, to_version=to_version, dry_run=dry_run)
        return _apply_dict(await self._call(self._stub.Rollback, request))

    async def status(self) -> dict:
        resp = await self._call(self._stub.Status, pb.StatusRequest())
        instances = []
        for inst in resp.instances:
            instances.append({
                "service": inst.service, "instance_id": inst.instance_id, "address": inst.address,
                "health": inst.health, "started_at": inst.started_at, "software_version": inst.software_version,
                "kinds": [{"kind": k.kind, "state": k.state, "desired_version": k.desired_version,
                           "applied_version": k.applied_version, "error": k.error, "updated_at": k.updated_at}
                          for k in inst.kinds]})
        return {"instances": instances,
                "documents": [{"kind": d.kind, "version": d.version, "digest": d.digest, "updated_at": d.updated_at,
                               "updated_by": d.updated_by} for d in resp.documents],
                "rejections": [{"kind": r.kind, "mod_revision": r.mod_revision, "error": r.error, "at": r.at,
                                "serving_version": r.serving_version} for r in resp.rejections]}

    async def health(self) -> dict:
        """The aggregated snapshot once (controlplane/aggregate.py)."""
        async for update in self.watch(once=True):
            return update
        raise BackendUnavailable(f"control plane at {self.address} ended the watch without a snapshot")

    async def watch(self, *, interval_s: float = 0.0, once: bool = False):
        """The snapshot, then changes, as dicts, until the caller stops or the link drops
        (BackendUnavailable). No deadline: the stream is meant to stay open."""
        call = self._stub.Watch(pb.WatchRequest(interval_s=interval_s, once=once), metadata=self._metadata)
        try:
            async for message in call:
                yield codec.loads(message.json)
        except grpc.aio.AioRpcError as exc:
            raise translate_rpc_error(exc, f"control plane at {self.address}") from exc
        finally:
            call.cancel()

    async def issue_token(self, role: str, *, subject: str = "flarectl", ttl_s: int = 0) -> dict:
        resp = await self._call(self._stub.IssueToken, pb.IssueTokenRequest(role=role, subject=subject, ttl_s=ttl_s))
        return {"token": resp.token, "id": resp.token_id, "role": resp.role, "expires_at": resp.expires_at}

    async def revoke(self, *, token_id: str = "", user: str = "", expires_at: int = 0, dry_run: bool = False) -> dict:
        """Revoke a token by id, or every client token USER holds now."""
        request = pb.RevokeRequest(dry_run=dry_run, expires_at=expires_at)
        if token_id:
            request.token_id = token_id
        else:
            request.user = user
        resp = await self._call(self._stub.Revoke, request)
        result = {"kind": resp.kind, "id": resp.id, "revoked_at": resp.revoked_at, "by": resp.by,
                  "dry_run": resp.dry_run}
        if resp.kind == "user":
            result["not_before"] = resp.not_before
        else:
            result["already"] = resp.already
        return result
