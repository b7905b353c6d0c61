"""The WebSocket server stations connect to, and the command port the services use."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import functools
import http
import logging
import random
import socket
import ssl
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import unquote

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from stekker.bus import Event
from stekker.cluster.limits import login_throttle_for
from stekker.cluster.registry import StationRegistry
from stekker.domain.health import DisconnectCause, disconnect_cause
from stekker.ocpp.connection import DATABASE_OUTAGE, Handler, StationConnection
from stekker.ocpp.heartbeats import HeartbeatWatch
from stekker.ocpp.outbound import Outbound, OutboundSeries
from stekker.ocpp.protocol import OCPP16, OCPP21, OCPP201
from stekker.ocpp.tls import transport_of
from stekker.ocpp.v16 import commands as v16_commands
from stekker.ocpp.v16.handlers import HANDLERS as V16_HANDLERS
from stekker.ocpp.v201 import commands as v201_commands
from stekker.ocpp.v201.handlers import HANDLERS as V201_HANDLERS
from stekker.services import reconcile, stations
from stekker.services.context import ServiceContext
from stekker.services.message_log import MessageLog
from stekker.services.outage import database_unavailable
from stekker.services.ports import StationCallError, StationCommand, StationOffline
from stekker.services.stations import Admission, ConnectionEnd, LastSeenTracker, Verdict

log = logging.getLogger(__name__)

Translator = Callable[[StationCommand], Outbound | OutboundSeries]

# Subprotocols, best supported first: of those a station offers, the handshake picks the first
# in this order. 2.1 shares 2.0.1's handlers (its common messages are spelled alike) but we
# support only those, so a station offering both gets 2.0.1. Frames are validated against
# each version's own schemas.
SUPPORTED: dict[str, tuple[Mapping[str, Handler], Translator]] = {
    OCPP201: (V201_HANDLERS, v201_commands.translations(OCPP201)),
    OCPP21: (V201_HANDLERS, v201_commands.translations(OCPP21)),
    OCPP16: (V16_HANDLERS, v16_commands.translate),
}

MAX_STATION_ID = 48


def station_id_from_path(path: str) -> str | None:
    """The station id is the last path segment (percent-decoded); None if it is unusable."""
    segment = unquote(path.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1])
    if not segment or len(segment) > MAX_STATION_ID or not segment.isprintable() or "/" in segment:
        return None
    return segment


def basic_auth(headers: Headers) -> tuple[str, str] | None:
    value = headers.get("Authorization")
    if not value or not value.lower().startswith("basic "):
        return None
    try:
        user, _, password = base64.b64decode(value[6:].strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user, password


def _address(connection: ServerConnection) -> str:
    remote = connection.remote_address
    return str(remote[0]) if remote else "?"


def _refuse(status: http.HTTPStatus, text: str, headers: dict[str, str] | None = None) -> Response:
    h = Headers({"Content-Type": "text/plain; charset=utf-8", "Connection": "close", **(headers or {})})
    body = (text + "\n").encode()
    h["Content-Length"] = str(len(body))
    return Response(status.value, status.phrase, h, body)


class _Held(Mapping[str, tuple[str, int | None]]):
    """A live view of the gateway's stations for the registry: station → (protocol, claim seq).
    A view, not a copy: the registry looks up one station per change notice, and copying 20,000
    connections for each notice of a reconnect storm would cost more than the storm."""

    def __init__(self, connections: dict[str, StationConnection], claims: dict[str, int | None]) -> None:
        self._connections = connections
        self._claims = claims

    def __getitem__(self, station_id: str) -> tuple[str, int | None]:
        return self._connections[station_id].protocol, self._claims.get(station_id)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._connections))

    def __len__(self) -> int:
        return len(self._connections)


class Gateway:
    """Accepts station connections and implements the services' CommandPort in-process.

    Listens on a plain ws:// port, a wss:// port (with `tls_context`), or both; the same
    handshake checks serve both, and each station's security profile decides which it may use.
    Every frame goes to the OCPP message log (unless `message_log_enabled` is off), and a
    heartbeat watch notices stations that stay connected but stop talking.

    With a `registry` (a cluster), each station is claimed in Redis when its socket opens and
    released when it closes; a claim by another gateway (the station reconnected there) closes
    our stale socket as replaced, without a disconnect: the station is online elsewhere. Without
    one (a single process) the gateway is the only one, and at start marks every station offline.
    """

    def __init__(
        self,
        ctx: ServiceContext,
        tls_context: ssl.SSLContext | None = None,
        registry: StationRegistry | None = None,
    ) -> None:
        self.ctx = ctx
        self.connections: dict[str, StationConnection] = {}
        self.registry = registry
        # the seq of each current connection's claim (None: on its way or not made), so a
        # takeover notice older than our own claim is not taken for a takeover
        self._claims: dict[str, int | None] = {}
        if registry is not None:
            registry.attach(self._held, self._taken_over)
        self.last_seen = LastSeenTracker(ctx)
        self.tls_port: int | None = None  # bound wss:// port once started
        self._tls_context = tls_context
        self._server: Server | None = None
        self._tls_server: Server | None = None
        # What admission decided per handshake, for the `connected` event; weak, because a
        # handshake can still fail after admission and then never reaches _handle.
        self._verdicts: weakref.WeakKeyDictionary[ServerConnection, Verdict] = weakref.WeakKeyDictionary()
        self._flusher: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()  # replaced sockets being closed
        self.message_log = MessageLog(ctx)
        self._log = self.message_log if ctx.settings.message_log_enabled else None
        self.heartbeats = HeartbeatWatch(ctx, self.connections)
        self._watch: asyncio.Task[None] | None = None
        self._stopping = False
        s = ctx.settings
        # Guessing is slowed cluster-wide: a station's wrong passwords count on every gateway.
        self.guesses = login_throttle_for(
            ctx.redis,
            ctx.keys,
            "station",
            free_failures=s.ocpp_auth_free_failures,
            address_free_failures=s.ocpp_auth_address_free_failures,
            max_delay=timedelta(seconds=s.ocpp_auth_max_delay),
        )
        self.guesses_refused = 0  # handshakes refused (429) without checking the password
        self.admissions_late = 0  # handshakes answered 503: admission took too long
        self._late_logged_at = float("-inf")

    # ---- CommandPort ---------------------------------------------------------------------

    def is_connected(self, station_id: str) -> bool:
        return station_id in self.connections

    def connected_stations(self) -> list[str]:
        return list(self.connections)

    def protocol(self, station_id: str) -> str | None:
        connection = self.connections.get(station_id)
        return None if connection is None else connection.protocol

    async def send(
        self, station_id: str, command: StationCommand, timeout: float | None = None
    ) -> dict[str, Any]:
        connection = self.connections.get(station_id)
        if connection is None:
            raise StationOffline(f"station {station_id} is offline")
        outbound = SUPPORTED[connection.protocol][1](command)
        timeout = timeout or self.ctx.settings.call_timeout
        if isinstance(outbound, OutboundSeries):
            replies: list[dict[str, Any]] = []
            for step in outbound.steps:
                try:
                    replies.append(step.read(await connection.call(step.action, step.payload, timeout)))
                except StationCallError as exc:
                    if step.on_error is None:
                        raise
                    replies.append(step.on_error(exc))
            return outbound.combine(replies)
        return outbound.read(await connection.call(outbound.action, outbound.payload, timeout))

    # ---- server --------------------------------------------------------------------------

    async def start(
        self,
        host: str,
        port: int | None,
        tls_port: int | None = None,
        *,
        plain_socket: socket.socket | None = None,
        tls_socket: socket.socket | None = None,
    ) -> int | None:
        """Listen on `port` (None: no plain ws://) and on `tls_port` with the TLS context, or
        serve on sockets already bound to them (`stekker.listeners`: a port in use is found
        before the database is touched).

        Returns the bound plain port (useful with port 0); the TLS one is in `self.tls_port`.
        """
        if tls_port is not None and self._tls_context is None:
            raise ValueError("a TLS port needs the Gateway's tls_context")
        if self.registry is None:
            # one gateway per database: whatever a crash left online is not connected now. In a
            # cluster the other gateways hold their stations; the OrphanSweeper finds the
            # stations of a gateway that died.
            await stations.mark_all_offline(self.ctx)
        bound = None
        if port is not None:
            self._server = await self._listen(host, port, None, plain_socket)
            bound = int(self._server.sockets[0].getsockname()[1])
        if tls_port is not None:
            try:
                self._tls_server = await self._listen(host, tls_port, self._tls_context, tls_socket)
            except BaseException:
                await self._close_listeners()
                raise
            self.tls_port = int(self._tls_server.sockets[0].getsockname()[1])
        self._flusher = asyncio.create_task(self.last_seen.run())
        self.ctx.bus.subscribe("station.retired", self._drop_retired)
        self._watch = asyncio.create_task(self.heartbeats.run(), name="heartbeat-watch")
        if self._log is not None:
            self._log.start()
        return bound

    async def _listen(
        self, host: str, port: int, tls_context: ssl.SSLContext | None, sock: socket.socket | None
    ) -> Server:
        s = self.ctx.settings
        where: dict[str, Any] = {"sock": sock} if sock is not None else {"host": host, "port": port}
        return await serve(
            self._handle,
            ssl=tls_context,
            **where,
            subprotocols=list(SUPPORTED),  # type: ignore[arg-type]
            process_request=self._process_request,
            max_size=s.ws_max_frame_bytes,
            ping_interval=s.ws_ping_interval,
            ping_timeout=s.ws_ping_timeout,
            close_timeout=s.ws_close_timeout,
            open_timeout=s.ocpp_handshake_timeout,  # a half-sent upgrade request is dropped by then
        )

    async def _close_listeners(self) -> None:
        for server in (self._server, self._tls_server):
            if server is not None:
                server.close()
        for server in (self._server, self._tls_server):
            if server is not None:
                await server.wait_closed()

    async def stop(self) -> None:
        """Shut down in order: accept no one new, let every station's frame in hand be
        committed and answered, close each socket with 1001 "server restarting" (the station
        reconnects), then flush the message log."""
        self._stopping = True
        for server in (self._server, self._tls_server):
            if server is not None:
                server.close(close_connections=False)
        timeout = self.ctx.settings.ws_close_timeout
        await asyncio.gather(
            *(c.finish(1001, "server restarting", timeout) for c in list(self.connections.values())),
            return_exceptions=True,
        )
        # sockets still in their handshake or boot admission when we began
        await asyncio.gather(
            *(
                ws.close(1001, "server restarting")
                for server in (self._server, self._tls_server)
                if server is not None
                for ws in server.connections
            ),
            return_exceptions=True,
        )
        await self._close_listeners()
        for task in (self._flusher, self._watch):
            if task is not None:
                task.cancel()
        await self.message_log.stop()  # what is still buffered, closing frames included
        await self.last_seen.flush()

    async def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        station_id = station_id_from_path(request.path)
        if station_id is None:
            return _refuse(http.HTTPStatus.NOT_FOUND, "connect to /ocpp/{station_id}")
        offered = [p.strip() for h in request.headers.get_all("Sec-WebSocket-Protocol") for p in h.split(",")]
        if not any(p in SUPPORTED for p in offered):
            return _refuse(
                http.HTTPStatus.BAD_REQUEST,
                f"no supported OCPP subprotocol offered (supported: {', '.join(SUPPORTED)})",
            )
        credentials = basic_auth(request.headers)
        password = None
        if credentials is not None:
            if credentials[0] != station_id:
                return _refuse(
                    http.HTTPStatus.UNAUTHORIZED,
                    "Basic auth user must be the station id",
                    {"WWW-Authenticate": 'Basic realm="ocpp"'},
                )
            password = credentials[1]
        address = _address(connection)
        if password is not None:
            # Password guessing is slowed per (station id, address) and per address, never per
            # station id alone, so a stranger cannot keep the real station out.
            wait = await self.guesses.admit(station_id, address, self.ctx.now())
            if wait is not None:
                self.guesses_refused += 1
                with contextlib.suppress(Exception):  # the refusal matters, not its record
                    await stations.guessing_throttled(self.ctx, station_id, address, wait)
                return _refuse(
                    http.HTTPStatus.TOO_MANY_REQUESTS,
                    f"too many wrong passwords for {station_id} from {address}; retry in {wait} s",
                    {"Retry-After": str(wait)},
                )
        try:
            verdict = await asyncio.wait_for(
                stations.admit(self.ctx, station_id, password, transport_of(connection)),
                self.ctx.settings.ocpp_admission_timeout,
            )
        except TimeoutError:
            # a boot storm: better a clear "come back" than a handshake that times out unanswered
            self.admissions_late += 1
            wait = random.randint(5, 30)  # spread the retries of a storm
            now = time.monotonic()
            if now - self._late_logged_at >= 10:
                self._late_logged_at = now
                log.warning(
                    "%s: could not admit in %.1f s; answered 503, retry in %d s (%d late so far)",
                    station_id,
                    self.ctx.settings.ocpp_admission_timeout,
                    wait,
                    self.admissions_late,
                )
            return _refuse(
                http.HTTPStatus.SERVICE_UNAVAILABLE,
                f"central system busy; retry in {wait} s",
                {"Retry-After": str(wait)},
            )
        except Exception as exc:
            if database_unavailable(exc):
                DATABASE_OUTAGE.failed(exc)
            else:
                log.exception("%s: admission check failed", station_id)
            return _refuse(http.HTTPStatus.SERVICE_UNAVAILABLE, "central system temporarily unavailable")
        admission = verdict.admission
        if password is not None and admission is not Admission.BAD_CREDENTIALS:
            await self.guesses.succeeded(station_id, address)  # only a wrong password counts
        if admission is Admission.ADMIT:
            self._verdicts[connection] = verdict
            return None
        if admission is Admission.UNKNOWN:
            return _refuse(http.HTTPStatus.NOT_FOUND, verdict.reason)
        if admission is Admission.RETIRED:
            return _refuse(http.HTTPStatus.FORBIDDEN, verdict.reason)
        if admission is Admission.BAD_CREDENTIALS:
            return _refuse(
                http.HTTPStatus.UNAUTHORIZED, verdict.reason, {"WWW-Authenticate": 'Basic realm="ocpp"'}
            )
        log.warning("%s: refused: %s", station_id, verdict.reason)
        return _refuse(http.HTTPStatus.UNAUTHORIZED, verdict.reason)  # below its security profile

    async def _handle(self, websocket: ServerConnection) -> None:
        station_id = station_id_from_path(websocket.request.path if websocket.request else "")
        protocol = websocket.subprotocol
        if station_id is None or protocol not in SUPPORTED:  # process_request already refused these
            await websocket.close(1002, "bad handshake")
            return
        handlers = SUPPORTED[protocol][0]
        connection = StationConnection(
            station_id,
            protocol,
            websocket,
            handlers,
            self.ctx,
            self.last_seen.touch,
            self._log,
            self.heartbeats.resumed,
            self._flooding,
        )
        previous = self.connections.get(station_id)
        self.connections[station_id] = connection
        replaced = None
        if previous is not None:
            # The station reconnected while its old socket lingers (a zombie): the new one wins now.
            previous.replaced = True
            replaced = self._end(previous, DisconnectCause.REPLACED, None, "replaced by a new connection")
            closing = asyncio.create_task(previous.close(1001, "replaced by a new connection"))
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)
        connected_at: datetime | None = None  # as recorded: a disconnect names its connection by it
        try:
            verdict = self._verdicts.pop(websocket, None)
            await self._claim(connection)
            connected_at = self.ctx.now()
            await stations.connected(
                self.ctx,
                station_id,
                protocol,
                connection.remote,
                transport_of(websocket),
                verdict.security_profile if verdict is not None else None,
                replaced,
                at=connected_at,
            )
            connection.spawn(
                functools.partial(
                    reconcile.after_connect,
                    self.ctx,
                    station_id,
                    protocol,
                    connection.opened_at,
                    self.ctx.settings.reconcile_boot_wait,
                ),
                "reconcile-sessions",
            )
            await connection.serve()
        finally:
            if self.connections.get(station_id) is connection:
                del self.connections[station_id]
                self._claims.pop(station_id, None)
                await self._release(connection)
            if not connection.replaced:
                code = websocket.close_code
                reason = websocket.close_reason or ""
                try:
                    sent = websocket.protocol.close_sent
                    end = self._end(
                        connection,
                        self._cause(websocket),
                        code,
                        reason,
                        None if sent is None else sent.code,
                    )
                    await stations.disconnected(self.ctx, station_id, code, reason, end, connected_at)
                except Exception:
                    log.exception("%s: could not record the disconnect", station_id)

    # ---- the station registry (cluster) ----------------------------------------------------

    async def _claim(self, connection: StationConnection) -> None:
        """Claim the station for this node before it is marked online, so no sweep finds it
        online without an owner. Redis trouble is the registry's to log, never the station's."""
        if self.registry is None:
            return
        station_id = connection.station_id
        self._claims[station_id] = None
        try:
            _previous, seq = await self.registry.claim(station_id, connection.protocol)
        except Exception:
            log.exception("%s: could not claim the station in the registry", station_id)
            self.registry.kick()
            return
        if seq is None:
            self.registry.kick()
        elif self.connections.get(station_id) is connection:
            self._claims[station_id] = seq

    async def _release(self, connection: StationConnection) -> None:
        """Release a closed station unless a newer socket holds it. When the registry says
        another node holds it, the station reconnected there before our socket's end was
        noticed: it counts as replaced, so no disconnect is recorded."""
        if self.registry is None or connection.replaced:
            return
        try:
            released = await self.registry.release(connection.station_id)
        except Exception:
            log.exception("%s: could not release the station in the registry", connection.station_id)
            return
        if released is False:
            log.info("%s: closed here, held by another gateway now", connection.station_id)
            connection.replaced = True

    def _held(self) -> _Held:
        """For the registry: the stations with a socket here, their protocol and claim seq."""
        return _Held(self.connections, self._claims)

    def _taken_over(self, station_id: str, seq: int) -> None:
        """Another gateway claimed a station we hold a socket for: ours is stale. Close it as
        replaced (1001), recording nothing: the station is online over there."""
        connection = self.connections.get(station_id)
        if connection is None:
            return
        log.info(
            "%s: reconnected to another gateway (claim %d); closing the stale socket here", station_id, seq
        )
        connection.replaced = True
        del self.connections[station_id]
        self._claims.pop(station_id, None)
        closing = asyncio.create_task(connection.close(1001, "replaced by a new connection"))
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)

    async def _flooding(self, connection: StationConnection, detail: dict[str, Any]) -> None:
        await stations.flooding(self.ctx, connection.station_id, remote=connection.remote, **detail)

    async def _drop_retired(self, event: Event) -> None:
        """A retired station is refused at connect; one that is connected now goes too."""
        connection = self.connections.get(str(event.data.get("station_id")))
        if connection is not None:
            await connection.close(1008, "station retired")

    def _cause(self, websocket: ServerConnection) -> DisconnectCause:
        p = websocket.protocol
        received = None if p.close_rcvd is None else (p.close_rcvd.code, p.close_rcvd.reason)
        sent = None if p.close_sent is None else (p.close_sent.code, p.close_sent.reason)
        return disconnect_cause(received, sent, p.close_rcvd_then_sent, self._stopping)

    def _end(
        self,
        connection: StationConnection,
        cause: DisconnectCause,
        code: int | None,
        reason: str,
        sent_code: int | None = None,
    ) -> ConnectionEnd:
        now = self.ctx.now()
        return ConnectionEnd(
            cause=cause,
            code=code,
            reason=reason,
            sent_code=sent_code,
            duration_s=(now - connection.opened_at).total_seconds(),
            missed_heartbeats=self.heartbeats.missed_so_far(connection, now),
            silent_since=connection.silent_since,
        )
