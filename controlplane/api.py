"""The gRPC binding of the daemon: token auth by role at the edge, Flare errors to status codes.

It sits above the daemon (it imports it; the daemon does not import it), so the daemon
runs without gRPC in tests and `serve_grpc` is the one place that binds a port."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import grpc
import grpc.aio

from services.common import codec
from services.common.auth import AUDIENCE_CONTROLPLANE, ROLE_SERVICE, TokenClaims, verify_token
from services.common.errors import FlareError, Forbidden, InvalidInput
from services.common.grpc_errors import abort_with
from services.common.proto import controlplane_pb2 as pb
from services.common.proto import controlplane_pb2_grpc as pb_grpc

from services.common.documents import StoredDocument, check_document_size
from .daemon import ControlPlane
from .messages import Hello, Report
from .roles import role_allows

__all__ = ["ControlPlaneApi", "document_to_pb", "serve_grpc"]


_SPEC_JSON: dict[tuple[str, int, str], str] = {}  # one encoding per version, not one per subscriber


def document_to_pb(doc: StoredDocument) -> pb.Document:
    key = (doc.kind, doc.version, doc.digest)
    spec_json = _SPEC_JSON.get(key)
    if spec_json is None:
        if len(_SPEC_JSON) >= 32:  # bounded: the served versions and a few older ones
            _SPEC_JSON.pop(next(iter(_SPEC_JSON)))
        spec_json = _SPEC_JSON[key] = codec.dumps_str(doc.spec)
    return pb.Document(kind=doc.kind, version=doc.version, spec_json=spec_json, digest=doc.digest,
                       updated_at=doc.updated_at, updated_by=doc.updated_by, comment=doc.comment)


def _apply_to_pb(result) -> pb.ApplyResponse:
    return pb.ApplyResponse(kind=result.kind, version=result.version, previous_version=result.previous_version,
                            changed=result.changed, dry_run=result.dry_run, diff=result.diff)


def _rpc(role: str):
    """Authenticate, check the role, and turn Flare errors into gRPC status codes."""

    def wrap(method):
        @functools.wraps(method)
        async def handler(self: ControlPlaneApi, request, context: grpc.aio.ServicerContext):
            try:
                needed = "viewer" if getattr(request, "dry_run", False) else role  # a dry run changes nothing
                claims = self.authorize(context, needed)
                return await method(self, request, context, claims)
            except FlareError as exc:
                await abort_with(context, exc)

        return handler

    return wrap


class ControlPlaneApi(pb_grpc.ControlPlaneServicer):
    def __init__(self, daemon: ControlPlane) -> None:
        self._cp = daemon
        self._streams_by_token: dict[str, set] = {}  # service token id -> its open config streams
        daemon.revocations.add_token_listener(self._end_streams_of)

    def authorize(self, context: grpc.aio.ServicerContext, role: str) -> TokenClaims:
        """The claims of the call's control-plane token, if it is not revoked and its role
        may act as `role` (controlplane.roles)."""
        token = None
        for key, value in context.invocation_metadata() or ():
            if key == "authorization" and value.startswith("Bearer "):
                token = value[len("Bearer "):]
        claims = verify_token(self._cp.secret, token, audience=AUDIENCE_CONTROLPLANE)
        self._cp.revocations.check(claims)
        if not role_allows(claims.role, role):
            raise Forbidden(f"role {claims.role or '(none)'} may not do this; needs {role}")
        return claims

    @_rpc("viewer")
    async def GetConfig(self, request, context, claims):
        return document_to_pb(self._cp.get(request.kind))

    @_rpc("operator")
    async def ApplyConfig(self, request, context, claims):
        check_document_size("document", len(request.manifest_json))
        try:
            manifest = codec.loads(request.manifest_json)
        except codec.JSONDecodeError as exc:
            raise InvalidInput(f"document is not JSON: {exc}") from exc
        expect = request.expect_version if request.HasField("expect_version") else None
        result = await self._cp.apply_manifest(manifest, expect_version=expect, dry_run=request.dry_run,
                                               actor=claims.subject, comment=request.comment)
        return _apply_to_pb(result)

    @_rpc("viewer")
    async def History(self, request, context, claims):
        docs = await self._cp.history(request.kind, limit=request.limit)
        return pb.HistoryResponse(entries=[document_to_pb(d) for d in docs])

    @_rpc("admin")
    async def Rollback(self, request, context, claims):
        return _apply_to_pb(await self._cp.rollback(request.kind, request.to_version, actor=claims.subject,
                                                    dry_run=request.dry_run))

    @_rpc("viewer")
    async def Status(self, request, context, claims):
        status = await self._cp.status()
        return pb.StatusResponse(
            instances=[pb.InstanceStatus(**{k: v for k, v in inst.items() if k != "kinds"},
                                         kinds=[pb.KindStatus(**k) for k in inst["kinds"]])
                       for inst in status["instances"]],
            documents=[document_to_pb(d) for d in self._cp.desired.served.values()],
            rejections=[pb.Rejection(kind=r.get("kind", ""), mod_revision=r.get("mod_revision", 0),
                                     error=r.get("error", ""), at=r.get("at", ""),
                                     serving_version=r.get("serving_version", 0)) for r in status["rejections"]])

    @_rpc("admin")
    async def IssueToken(self, request, context, claims):
        token = self._cp.issue_token(request.role, subject=request.subject or "flarectl",
                                     ttl_s=request.ttl_s or 7 * 86400)
        issued = verify_token(self._cp.secret, token, audience=AUDIENCE_CONTROLPLANE)
        return pb.IssueTokenResponse(token=token, expires_at=issued.expires_at, role=request.role,
                                     token_id=issued.token_id)

    @_rpc("admin")
    async def Revoke(self, request, context, claims):
        target = request.WhichOneof("target")
        result = await self._cp.revoke(token_id=request.token_id if target == "token_id" else "",
                                       user=request.user if target == "user" else "",
                                       expires_at=request.expires_at, actor=claims.subject, dry_run=request.dry_run)
        return pb.RevokeResponse(kind=result["kind"], id=result["id"], revoked_at=result["revoked_at"],
                                 not_before=result.get("not_before", 0.0), already=result.get("already", False),
                                 dry_run=result["dry_run"], by=result["by"])

    async def Watch(self, request, context):
        """The aggregated picture: a snapshot, then changes (controlplane/aggregate.py)."""
        try:
            self.authorize(context, "viewer")
        except FlareError as exc:
            await abort_with(context, exc)
            return
        if request.once:
            yield pb.HealthUpdate(json=codec.dumps(await self._cp.aggregator.fresh_snapshot()))
            return
        interval = max(0.0, min(request.interval_s, 60.0))
        async for update in self._cp.aggregator.updates(interval_s=interval):
            yield pb.HealthUpdate(json=codec.dumps(update))

    async def Subscribe(self, request_iterator, context):
        try:
            try:
                claims = self.authorize(context, ROLE_SERVICE)  # before anything registers
            except FlareError:
                # Let the client finish sending its hello (a second at most): refused while
                # it is still writing, its side of the call loses the status to a generic
                # "Internal error from Core".
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(anext(aiter(request_iterator), None), 1.0)
                raise
            first = await anext(aiter(request_iterator), None)
            if first is None or not first.HasField("hello"):
                raise InvalidInput("the first message on the stream must be a hello")
            h = first.hello
            if "/" in claims.subject and claims.subject != f"{h.service}/{h.instance_id}":
                # A token minted for one instance (subject "service/instance") speaks for that
                # instance only; a subject without "/" is a shared service token.
                raise Forbidden(f"this service token is for {claims.subject}, not {h.service}/{h.instance_id}")
            session = await self._cp.hub.attach(Hello(
                service=h.service, instance_id=h.instance_id, address=h.address, kinds=tuple(h.kinds),
                applied={k: (a.version, a.digest) for k, a in h.applied.items()}, started_at=h.started_at,
                software_version=h.software_version, self_registered=h.self_registered))
        except FlareError as exc:
            await abort_with(context, exc)
            return
        reader = asyncio.create_task(self._read_reports(request_iterator, session))
        streams = self._streams_by_token.setdefault(claims.token_id, set())
        streams.add(session)
        try:
            while True:
                getter = asyncio.create_task(session.outbox.get())
                done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    break  # the agent closed its side
                doc = getter.result()
                if doc is None:
                    break  # replaced by a newer stream of the same instance, or shutting down
                yield pb.Push(document=document_to_pb(doc))
        finally:
            streams.discard(session)
            if not streams:
                self._streams_by_token.pop(claims.token_id, None)
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
            await self._cp.hub.detach(session)

    def _end_streams_of(self, token_id: str) -> None:
        """A revoked service token's open config streams end; its reconnect is refused."""
        for session in self._streams_by_token.pop(token_id, set()):
            session.outbox.put_nowait(None)

    async def _read_reports(self, request_iterator, session) -> None:
        async for message in request_iterator:
            if message.HasField("summary"):
                try:
                    summary = codec.loads(message.summary.json)
                except codec.JSONDecodeError:
                    continue  # a garbled summary costs one second of numbers, not the stream
                self._cp.hub.summary(session, summary)
            elif message.HasField("report"):
                r = message.report
                await self._cp.hub.report(session, Report(kind=r.kind, version=r.version, digest=r.digest, ok=r.ok,
                                                          error=r.error))


async def serve_grpc(daemon: ControlPlane, host: str = "127.0.0.1", port: int = 0) -> int:
    """Serve the push stream and the admin API of `daemon`; return the bound port (0 picks one).

    The daemon stops the server when it stops."""
    from .client import MAX_MESSAGE_BYTES

    server = grpc.aio.server(options=[
        ("grpc.so_reuseport", 0),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ])
    pb_grpc.add_ControlPlaneServicer_to_server(ControlPlaneApi(daemon), server)
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError as exc:  # grpc's only word for "cannot bind"; callers handle OSError
        raise OSError(errno.EADDRINUSE, f"cannot bind the control plane to {host}:{port} (in use?)") from exc
    await server.start()
    daemon.attach_server(server)
    return bound
