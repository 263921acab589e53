"""The WebSocket gateway: authenticate, keep a session per device, relay frames.

Each connection has a reader (this module: parse, dispatch, answer errors) and a writer
(ClientConnection), both on a Link (links.py: picows or websockets underneath). Device
acks are gathered per event-loop tick and handed to the router in one call for the tick
where the router takes that (on_delivered_many: the core's RouterService, here or over a
worker's channel), else in one call per (user, conversation) (services.delivery.acks),
because at full rate there is one ack per delivered message. What the core pushes arrives as Push records
(services/delivery/seam.py): the frame is written as is, never parsed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Sequence
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, serve

from services.backends.revocations import Revocations
from services.common.bounds import ByteBudget
from services.common import codec
from services.common.auth import AUDIENCE_CLIENT, TokenClaims, verify_token
from services.common.config import GatewayConfig, SyncConfig
from services.common.errors import BackendUnavailable, Conflict, FlareError, Unauthorized
from services.common.ids import DeviceId, MessageIdGenerator, UserId
from services.common.metrics import CONNECTIONS, FRAME_ERRORS
from services.common.model import MAX_GROUP_MEMBERS, MAX_ID_LENGTH, DeviceType, Session, now_ms, validate_name
from services.delivery.acks import DeliveredAcks
from services.delivery.seam import GatewayDirectory, Push
from services.router.client import RouterClient
from services.session.client import SessionClient
from services.sync.client import SyncClient

from .backpressure import BackpressuredConnection
from .connection import (CLOSE_BAD_PARAMETERS, CLOSE_IDLE, CLOSE_REPLACED, CLOSE_UNAUTHORIZED, ClientConnection,
                         TickFlusher)
from .frames import KNOWN_TYPES, MAX_DEPTH, error_frame, parse_frame
from .handlers import FrameHandlers, Peers
from .links import Link, LinkClosed, PicowsLink, WebsocketsLink
from .pressure import SendGate

__all__ = ["GatewayService"]

log = logging.getLogger("flare.gateway")

PROTOCOL_VERSION = 2  # hello's `protocol`: bumped when docs/protocol.md changes incompatibly


class GatewayService:
    def __init__(
        self, *, config: GatewayConfig, gateway_id: str, token_secret: bytes, router: RouterClient,
        sync: SyncClient, session: SessionClient, ids: MessageIdGenerator, peers: GatewayDirectory | None = None,
        revocations: Revocations | None = None,
        recall_window_s: int = SyncConfig().recall_window_s, sync_page_limit: int = SyncConfig().page_limit,
        reuse_port: bool = False, ack_reports_in_flight: int = 1,
    ) -> None:
        """`peers`: the other gateways (split deployment, gateway workers), so a device that
        logs in here again can have its old connection on another gateway closed.
        `revocations`: the revoked tokens and users (started by the caller); a user's revoke
        also closes the connections here whose token it revoked. `recall_window_s` and
        `sync_page_limit`: message-sync's settings, advertised in hello. `reuse_port`: share
        the port with other gateway processes (SO_REUSEPORT). `ack_reports_in_flight`: device
        acks reported to the router at once (services.delivery.acks: >1 when it is remote)."""
        self.config = config
        self.gateway_id = gateway_id
        self.router = router
        self.sync = sync
        self.session = session
        self._peers = peers
        self._reuse_port = reuse_port
        self._secret = token_secret
        # A router that takes a tick's acks in one call (the core's RouterService, in this
        # process or over a worker's channel) is given them so; a gRPC client is not.
        self._acks = DeliveredAcks(lambda user, conversation, seqs: self.router.on_delivered(user, conversation, seqs),
                                   report_many=getattr(router, "on_delivered_many", None),
                                   in_flight=ack_reports_in_flight)
        self.gate = SendGate(max_loop_lag_ms=config.shed_loop_lag_ms)
        self._handlers = FrameHandlers(Peers(config, router, sync, session, self._acks.note, self.gate), ids)
        self._connections: dict[str, ClientConnection] = {}
        self.outbound_budget = ByteBudget("gateway_outbound", config.outbound_total_bytes)
        self._flusher = TickFlusher()  # one end-of-tick write pass for every connection
        self._token_issued_at: dict[str, float] = {}  # connection id -> its token's iat
        self._revocations = revocations
        if revocations is not None:
            revocations.add_listener(self._close_revoked)
        self._server: Server | asyncio.Server | None = None
        self._links: set[asyncio.Task] = set()  # picows: the task serving each connection
        self._watchdog: asyncio.Task | None = None
        self.port = config.port
        # Every limit a client must respect, advertised in the hello frame (docs/protocol.md).
        self.limits = {
            "max_frame_bytes": config.max_frame_bytes,
            "max_body_bytes": config.max_body_bytes,
            "max_depth": MAX_DEPTH,
            "max_id_length": MAX_ID_LENGTH,
            "max_group_members": MAX_GROUP_MEMBERS,
            "recall_window_s": recall_window_s,
            "sync_page_limit": sync_page_limit,
            "heartbeat_interval_s": round(config.heartbeat_timeout_s / 3, 3),
            "heartbeat_timeout_s": config.heartbeat_timeout_s,
        }

    @property
    def url(self) -> str:
        return f"ws://{self.config.host}:{self.port}/ws"

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    async def start(self) -> None:
        # No server pings on either: the idle watchdog (heartbeat_timeout_s, docs/protocol.md)
        # already closes a connection that sends nothing, and a keepalive per connection
        # costs memory and a wakeup per ping at 10,000 connections.
        if self.config.websocket == "picows":
            self._server = await self._start_picows()
        else:
            self._server = await serve(
                lambda ws: self._serve_connection(WebsocketsLink(ws)), self.config.host, self.config.port,
                max_size=self.config.max_frame_bytes, compression=None,
                ping_interval=None, max_queue=64, reuse_port=self._reuse_port or None,
                create_connection=BackpressuredConnection,  # pongs owed to a client that never reads are bounded
            )
        self.port = next(iter(self._server.sockets)).getsockname()[1]
        self._watchdog = asyncio.create_task(self._close_idle_forever(), name="gateway-idle-watchdog")
        self.gate.start()
        log.info("gateway %s listening on %s", self.gateway_id, self.url)

    async def _start_picows(self) -> asyncio.Server:
        from picows import ws_create_server

        def serve_link(link: PicowsLink) -> None:
            task = asyncio.get_running_loop().create_task(self._serve_connection(link))
            self._links.add(task)
            task.add_done_callback(self._links.discard)

        def listener(request) -> PicowsLink:
            return PicowsLink(request.path, max_message_bytes=self.config.max_frame_bytes, on_connected=serve_link)

        # picows logs every connect and disconnect at INFO (10,000 clients, 10,000 lines);
        # what it logs above that (a listener that raised, a protocol error) is kept.
        picows_log = logging.getLogger("flare.gateway.picows")
        picows_log.setLevel(logging.WARNING)
        return await ws_create_server(
            listener, self.config.host, self.config.port, logger_name=picows_log,
            # A frame is read whole before the link sees it: picows' own cap stops one just
            # over the limit from being buffered; the link closes 1009 over max_frame_bytes.
            max_frame_size=self.config.max_frame_bytes + 1, enable_auto_pong=False,  # the link answers pings
            websocket_handshake_timeout=10, reuse_port=self._reuse_port or None,
            # An idle connection costs 18 KiB as on websockets (bench/e2e_bench.py --idle 3000);
            # picows' default 16 KiB read buffer and its own transport made it 38 KiB, and
            # that transport measured no CPU gain over uvloop's (bench/results/2026-12-04).
            read_buffer_init_size=1024, use_aiofastnet=False,
        )

    async def stop(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
        await self.gate.stop()
        if self._server is not None:
            self._server.close()
            if self._links:  # picows leaves open connections to their owner
                for conn in list(self._connections.values()):
                    conn.close_soon(1001, "server shutting down")
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.gather(*self._links, return_exceptions=True), 5)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None

    # -- push (the delivery seam, services/delivery/seam.py) ------------------------------
    def push(self, pushes: Sequence[Push]) -> list[str]:
        """Queue each frame on its connection; the connection ids that are gone."""
        gone: list[str] = []
        connections = self._connections
        for connection_id, conversation_id, seq, frame in pushes:
            conn = connections.get(connection_id)
            if conn is None or not conn.push(frame, conversation_id, seq):
                gone.append(connection_id)
        return gone

    def close_connection(self, connection_id: str, *, code: int, reason: str, error: bytes | None = None) -> None:
        if error is None and code == CLOSE_REPLACED:
            error = error_frame("replaced", "this device logged in again elsewhere")
        conn = self._connections.get(connection_id)
        if conn is not None:
            conn.close_soon(code, reason, error_frame=error)

    # -- device acks, batched per tick -----------------------------------------------------
    def note_delivered(self, user_id: str, conversation_id: str, seq: int) -> None:
        self._acks.note(user_id, conversation_id, seq)

    # -- connections --------------------------------------------------------------------
    async def _authenticate(self, ws: Link, query: dict[str, list[str]]
                            ) -> tuple[UserId, DeviceId, DeviceType, TokenClaims] | None:
        token = (query.get("token") or [None])[0]
        try:
            claims = verify_token(self._secret, token, audience=AUDIENCE_CLIENT)
            if self._revocations is not None:
                self._revocations.check(claims)
            user_id = validate_name(claims.subject, "token subject")
        except Unauthorized as exc:
            # token_expired and token_revoked tell the app to get a new token; the rest
            # (forged, malformed, another audience's token) are plain unauthorized.
            code = exc.code if exc.code in ("token_expired", "token_revoked") else "unauthorized"
            await self._refuse(ws, code, str(exc))
            return None
        except ValueError as exc:
            await self._refuse(ws, "unauthorized", f"bad token: {exc}")
            return None
        try:
            # Required: two devices that both fell back to one default id would keep
            # replacing each other's connection.
            device_id = validate_name((query.get("device_id") or [""])[0], "device_id")
            device_type = DeviceType((query.get("device_type") or ["mobile"])[0].lower())
        except ValueError as exc:
            await self._refuse(ws, "invalid_input", f"bad connection parameters: {exc}", close=CLOSE_BAD_PARAMETERS)
            return None
        return UserId(user_id), DeviceId(device_id), device_type, claims

    def _close_revoked(self, user: str, not_before: float) -> None:
        """A revoke of `user`: close their connections that logged in with an older token."""
        for connection_id, conn in list(self._connections.items()):
            if conn.user_id == user and self._token_issued_at.get(connection_id, 0.0) < not_before:
                conn.close_soon(CLOSE_UNAUTHORIZED, "token revoked",
                                error_frame=error_frame("token_revoked", "your token was revoked; log in again"))

    @staticmethod
    def _wants_compact(query: dict[str, list[str]]) -> bool:
        return (query.get("compact") or ["0"])[0] in ("1", "true")

    async def _refuse(self, ws: Link, code: str, message: str, *, close: int = CLOSE_UNAUTHORIZED) -> None:
        FRAME_ERRORS.labels(code).inc()
        with contextlib.suppress(LinkClosed):
            await ws.write_texts_drained([error_frame(code, message)])
            await ws.close(close, code)

    async def _serve_connection(self, ws: Link) -> None:
        query = parse_qs(urlsplit(ws.path).query)
        identity = await self._authenticate(ws, query)
        if identity is None:
            return
        user_id, device_id, device_type, claims = identity
        connection_id = f"{self.gateway_id}/{uuid.uuid4().hex[:16]}"
        compact = self._wants_compact(query)
        conn = ClientConnection(ws, user_id=user_id, device_id=device_id, device_type=device_type,
                                connection_id=connection_id, max_queue=self.config.outbound_queue,
                                compact=compact, max_queue_bytes=self.config.outbound_queue_bytes,
                                budget=self.outbound_budget, flusher=self._flusher)
        try:
            result = await self.session.login(user_id, device_id, device_type=device_type,
                                              connection_id=connection_id, gateway_id=self.gateway_id)
        except Conflict as exc:
            await self._refuse(ws, "conflict", str(exc))
            return
        except BackendUnavailable as exc:
            with contextlib.suppress(LinkClosed):
                await ws.write_texts_drained([error_frame("unavailable", str(exc))])
                await ws.close(1013, "try again later")
            return
        replaced = getattr(result, "replaced", None)
        if replaced is not None:
            await self._close_replaced(replaced)
        self._connections[connection_id] = conn
        self._token_issued_at[connection_id] = claims.issued_at
        CONNECTIONS.inc()
        conn.start()
        conn.push(codec.dumps({
            "type": "hello", "user_id": user_id, "device_id": device_id, "connection_id": connection_id,
            "server_time": now_ms(), "protocol": PROTOCOL_VERSION, **self.limits,
            **({"compact": True} if compact else {}),
        }))
        try:
            await self._read_forever(conn)
        finally:
            self._connections.pop(connection_id, None)
            self._token_issued_at.pop(connection_id, None)
            CONNECTIONS.dec()
            await conn.stop()
            with contextlib.suppress(FlareError):
                await self.session.logout(user_id, device_id, connection_id=connection_id)

    async def _close_replaced(self, replaced: Session) -> None:
        if replaced.gateway_id == self.gateway_id:
            self.close_connection(replaced.connection_id, code=CLOSE_REPLACED, reason="replaced")
            return
        peer = self._peers.get(replaced.gateway_id) if self._peers is not None else None
        if peer is None:
            return  # that gateway is gone, and its connections with it
        try:
            await peer.close_connection(replaced.connection_id, code=CLOSE_REPLACED, reason="replaced")
        except FlareError:  # best effort: the old connection no longer has a route either way
            log.warning("could not close replaced connection %s on %s", replaced.connection_id,
                        replaced.gateway_id, exc_info=True)

    async def _read_forever(self, conn: ClientConnection) -> None:
        loop = asyncio.get_running_loop()
        table = self._handlers.table
        async for raw in conn.link.frames():
            conn.last_seen = loop.time()
            ref = None
            try:
                frame, ref = parse_frame(raw)
                handler = table.get(frame["type"])
                if handler is None:
                    FRAME_ERRORS.labels("unknown_type").inc()
                    conn.push(error_frame(
                        "unknown_type", f"unknown frame type {frame['type'][:64]!r}; known: {', '.join(sorted(KNOWN_TYPES))}",
                        ref=ref))
                    continue
                await handler(conn, frame)
            except BackendUnavailable as exc:
                FRAME_ERRORS.labels("unavailable").inc()
                conn.push(error_frame("unavailable", str(exc) or "a backend is unavailable; retry", ref=ref))
            except FlareError as exc:
                ref = ref if ref is not None else getattr(exc, "ref", None)
                FRAME_ERRORS.labels(exc.code).inc()
                conn.push(error_frame(exc.code, str(exc), ref=ref, details=_public(exc.details)))
            except Exception:  # a bug must cost one frame an error, not the connection
                log.exception("frame handler failed for %s/%s", conn.user_id, conn.device_id)
                FRAME_ERRORS.labels("internal").inc()
                conn.push(error_frame("internal", "the server failed on this frame; it was not applied", ref=ref))
            if conn.closed:
                break

    async def _close_idle_forever(self) -> None:
        loop = asyncio.get_running_loop()
        timeout = self.config.heartbeat_timeout_s
        while True:
            await asyncio.sleep(min(timeout / 3, 10))
            cutoff = loop.time() - timeout
            for conn in list(self._connections.values()):
                if conn.last_seen < cutoff:
                    conn.close_soon(CLOSE_IDLE, "idle: no frame within the heartbeat timeout")


def _public(details: dict) -> dict | None:
    """Only plain values go back to clients."""
    out = {k: v for k, v in details.items() if isinstance(v, (str, int, float, bool)) or v is None}
    return out or None

