"""Wires the parts together: database, bus, OCPP gateway and HTTP API, for the roles this
process runs (all of them by default; `stekker serve --role gateway|api|worker` in a cluster)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Iterator
from datetime import datetime

import uvicorn

from stekker.api.app import create_http_app
from stekker.api.http_protocol import KEEP_ALIVE_SECONDS, MAX_HEAD_BYTES, protocol_with_header_timeout
from stekker.api.probes import DEPENDENCIES, Probes, create_probe_app
from stekker.bus import Event, InProcessBus
from stekker.bus.streams import StreamBus
from stekker.cluster import redis_link
from stekker.cluster.db_claim import DatabaseClaim, check_cluster_settings
from stekker.cluster.leases import Leases, LocalLeases, RedisLeases
from stekker.cluster.node import ALL_ROLES, NodeInfo, Role, new_node_id
from stekker.cluster.nodes import NodeBeacon
from stekker.cluster.registry import OrphanSweeper, StationRegistry
from stekker.cluster.routing import CommandExecutor, RoutedCommands
from stekker.config import Settings
from stekker.db.base import utcnow
from stekker.db.engine import make_engine, make_session_factory
from stekker.db.migrate import upgrade
from stekker.db.probe import check_reachable, shown  # shown: any URL, its password hidden
from stekker.db.writer import GroupCommitWriter
from stekker.listeners import Listeners, bind_listeners
from stekker.ocpi import commands as ocpi_commands
from stekker.ocpi.location_pushes import LocationPushes
from stekker.ocpp.server import Gateway
from stekker.ocpp.tls import context_from_settings
from stekker.opendata.cache import OpenDataCache
from stekker.services import housekeeping, roaming_tokens, stations, users
from stekker.services.cdrs import CdrWorker
from stekker.services.context import ServiceContext
from stekker.services.jobs import JobRunner
from stekker.services.ocpi_outbox import OutboxWorker
from stekker.services.roaming_pushes import RoamingPushes
from stekker.services.station_setup import LocalListSyncer
from stekker.services.stop_release import FlowBook
from stekker.web import live as web_live

log = logging.getLogger(__name__)


class _HttpServer(uvicorn.Server):
    """uvicorn's server without its own signal handlers. uvicorn takes SIGTERM, stops HTTP
    alone and raises the signal again, which kills the process before `Stekker.stop` closes
    the stations and drains the writer; `Stekker.run_forever` handles the signals instead."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def exit_now(self) -> None:
        """Stop at once: uvicorn notices `should_exit` only at its next 0.1 s tick."""
        self.should_exit = True
        self._exit_requested().set()

    def _exit_requested(self) -> asyncio.Event:
        event: asyncio.Event | None = getattr(self, "_exit_event", None)
        if event is None:
            event = self._exit_event = asyncio.Event()
        return event

    async def main_loop(self) -> None:
        # uvicorn's loop, but woken by `exit_now` instead of sleeping out its tick
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864_000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._exit_requested().wait(), 0.1)


OCPI_COMMAND_SWEEP = housekeeping.Chore(
    "ocpi-command-sweep", lambda ctx: 30.0, ocpi_commands.sweep_unanswered
)


class RedisUnreachable(Exception):
    """Cluster mode and Redis does not answer at start: one line naming STEKKER_REDIS_URL."""


class Stekker:
    """A running backoffice. `start()` binds the listeners, migrates the database and serves.

    `roles`: what this process runs (default: everything, the single process). Every part is
    built whatever the roles (cheap objects); only the roles' parts are started.

    Construction already refuses unusable TLS files (`TlsConfigError`) and settings that cannot
    run as a cluster (`ClusterConfigError`), before any I/O.
    """

    def __init__(
        self,
        settings: Settings,
        clock: Callable[[], datetime] = utcnow,
        roles: frozenset[Role] = ALL_ROLES,
    ) -> None:
        check_cluster_settings(settings.database_url, settings.redis_url, roles)
        self.settings = settings
        self.node = NodeInfo(settings.node_id or new_node_id(), roles)
        self.engine = make_engine(settings.database_url)
        keys = redis_link.Keys(settings.redis_prefix)
        # cluster mode: Redis carries what crosses processes; one process: memory is the truth
        self.redis = None if settings.redis_url is None else redis_link.connect(settings.redis_url)
        factory = make_session_factory(self.engine)
        # events: across processes on a Redis stream (kept in PostgreSQL while Redis is away)
        self.bus: InProcessBus | StreamBus = (
            InProcessBus()
            if settings.redis_url is None
            else StreamBus(
                settings.redis_url,
                keys,
                self.node.node_id,
                factory,
                # a member silent for two leases is taken for dead: its events go to another
                claim_idle=2 * settings.cluster_lease_seconds,
            )
        )
        leases: Leases = (
            LocalLeases(self.node.node_id)
            if self.redis is None
            else RedisLeases(self.redis, keys, self.node.node_id)
        )
        # SQLite has one writer; PostgreSQL takes several writing connections in parallel.
        self.writer = GroupCommitWriter(factory, workers=1 if settings.is_sqlite else 4)
        self.ctx = ServiceContext(
            settings,
            factory,
            self.bus,
            clock=clock,
            writer=self.writer,
            node=self.node,
            redis=self.redis,
            keys=keys,
            leases=leases,
        )
        # cluster: which gateway holds which station (Redis), and commands routed to it
        self.registry: StationRegistry | None = None
        self.routed: RoutedCommands | None = None
        self.executor: CommandExecutor | None = None
        self.sweeper: OrphanSweeper | None = None
        if self.redis is not None:
            self.registry = StationRegistry(
                self.redis, keys, self.node.node_id, settings.cluster_lease_seconds
            )
        self.gateway = Gateway(self.ctx, context_from_settings(settings), self.registry)
        self.ctx.commands = self.gateway
        if self.registry is not None:
            local = self.gateway if self.has(Role.GATEWAY) else None
            self.ctx.commands = self.routed = RoutedCommands(self.ctx, local, self.registry)
            if local is not None:
                self.executor = CommandExecutor(self.ctx, self.gateway, self.registry)
                self.sweeper = OrphanSweeper(self.ctx, self.registry)
        self.probes = Probes(
            self.ctx,
            ready_checks={"ocpp": self._gateway_ready} if self.has(Role.GATEWAY) else {},
            stations_connected=(lambda: len(self.gateway.connections)) if self.has(Role.GATEWAY) else None,
            # a gateway of a cluster stays ready through a Redis or PostgreSQL outage: HAProxy would
            # otherwise cut every station at once, and they would find the same outage elsewhere
            critical=() if self.redis is not None and self.node.roles == {Role.GATEWAY} else DEPENDENCIES,
        )
        self.claim = DatabaseClaim(self.engine, settings.database_url, clustered=self.redis is not None)
        self.beacon: NodeBeacon | None = None
        if self.redis is not None:
            self.beacon = NodeBeacon(
                self.redis, keys, self.node, settings.cluster_lease_seconds, self._describe_node
            )
        self._started: set[str] = set()  # the parts started, so `stop` stops just those
        self._unfollow_auth: Callable[[], None] | None = None
        self.ocpp_port: int | None = 0  # bound ports once started; None: that listener is off
        self.ocpp_tls_port: int | None = None
        self.http_port = 0
        self._http: _HttpServer | None = None
        self._http_task: asyncio.Task[None] | None = None
        self._syncer = LocalListSyncer(self.ctx)
        self.jobs = JobRunner(self.ctx)  # bulk jobs of this process; resumed at start
        self.cdrs = CdrWorker(self.ctx)  # the CDR of every session that ends here
        self.ocpi_outbox = OutboxWorker(self.ctx)  # pushes to roaming partners, after commit
        self.location_pushes = LocationPushes(self.ctx, self.ocpi_outbox.wake)
        self.roaming_pushes = RoamingPushes(self.ctx)  # sessions and CDRs to the driver's eMSP
        # stop-and-release flows started through this API; mirrored to Redis in a cluster
        self.helpdesk_flows = FlowBook.for_context(self.ctx)
        self.opendata = OpenDataCache(self.ctx)  # the public feeds, built on their first request
        self._chores: list[asyncio.Task[None]] = []  # retention purges, upload deadlines

    def has(self, role: Role) -> bool:
        return self.node.has(role)

    def _gateway_ready(self) -> str | None:
        """/ready's check of the OCPP listener: None when it serves, else why not."""
        return None if "gateway" in self._started else "the OCPP listener is not serving"

    def _describe_node(self) -> dict[str, object]:
        """What this node's heartbeat tells the cluster (cheap: called every few seconds)."""
        return {
            "stations": len(self.gateway.connections),
            "leading": self.ctx.leases.held(),
            "http_port": self.http_port,
            "ocpp_port": self.ocpp_port if self.has(Role.GATEWAY) else None,
        }

    async def start(self, migrate: bool = True) -> None:
        """Bind every listener, then migrate, reconcile and serve.

        The ports come first: a server that cannot have them (`ListenerError`, one line naming
        the setting) leaves without reading or writing the database, so a second server started
        by mistake on the same database cannot mark the first one's stations offline. Then the
        database is claimed (`DatabaseInUse`: another process without Redis uses it)."""
        listeners = bind_listeners(self.settings, ocpp=self.has(Role.GATEWAY))
        try:
            await self._start_on(listeners, migrate)
        except BaseException:
            listeners.close()  # those the gateway or uvicorn did not take over yet
            await self.claim.release()
            if self.redis is not None:
                with contextlib.suppress(Exception):
                    await self.redis.aclose()
            raise

    async def _start_on(self, listeners: Listeners, migrate: bool) -> None:
        await check_reachable(self.engine, self.settings.database_url)  # one line, not a traceback
        await self.claim.take()
        if migrate:
            await upgrade(self.engine)
        if self.redis is not None:
            await self._join_cluster()
        self.writer.start()
        self._started.add("writer")
        self._unfollow_auth = users.follow_auth_changes(self.ctx)  # caches emptied on any process's change
        if self.has(Role.WORKER):
            await self._start_worker()
        if self.has(Role.API) and self.settings.api_token is None and not await users.any_users(self.ctx):
            users.warn_open_once(self.ctx)
        s = self.settings
        if self.has(Role.GATEWAY):
            await stations.warn_weak_admission(self.ctx)
            self.ocpp_port = await self.gateway.start(
                s.host,
                s.ocpp_port if s.ocpp_plain_enabled else None,
                s.ocpp_tls_port,
                plain_socket=listeners.ocpp,
                tls_socket=listeners.ocpp_tls,
            )
            self.ocpp_tls_port = self.gateway.tls_port
            self._started.add("gateway")
            if self.executor is not None and self.sweeper is not None:
                await self.executor.start()  # commands other processes route to our stations
                await self.sweeper.start()  # stations a dead gateway left online
                self._started.add("cluster-gateway")
        else:
            self.ocpp_port = None
        if self.has(Role.WORKER):
            await self.jobs.start()
            self._started.add("jobs")
        await self._serve_http(listeners)
        urls = [
            f"{scheme}://{s.host}:{port}/ocpp/{{station_id}}"
            for scheme, port in (("ws", self.ocpp_port), ("wss", self.ocpp_tls_port))
            if port is not None
        ]
        if self.node.roles == ALL_ROLES and self.redis is None:
            log.info("stekker up: OCPP %s, API http://%s:%d/docs", " and ".join(urls), s.host, self.http_port)
        else:
            log.info(
                "stekker node %s up as %s: %sHTTP http://%s:%d",
                self.node.node_id,
                ",".join(self.node.role_names),
                f"OCPP {' and '.join(urls)}, " if urls else "",
                s.host,
                self.http_port,
            )

    async def _join_cluster(self) -> None:
        """Announce this node (its first heartbeat), before it takes any work or station."""
        assert self.redis is not None and self.beacon is not None
        try:
            await self.redis.ping()
        except Exception as exc:
            raise RedisUnreachable(
                f"STEKKER_REDIS_URL={shown(self.settings.redis_url or '')} cannot be reached: "
                f"{redis_link.reason(exc)}"
            ) from exc
        await self.beacon.start()
        self._started.add("beacon")
        assert self.registry is not None
        await self.registry.start()  # the mirror of who holds which station, before any command
        self._started.add("registry")
        await self.bus.start()  # before anything publishes: the consumer groups exist from here on
        self._started.add("bus")
        self.probes.refreshers.append(self.bus.refresh_metrics)

    async def _start_worker(self) -> None:
        """The work that runs once per cluster: chores, CDRs, OCPI pushes, local lists."""
        # the chores of the services, and the OCPI edge's: results for commands whose process died
        self._chores = housekeeping.start(self.ctx, (*housekeeping.CHORES, OCPI_COMMAND_SWEEP))
        self.bus.subscribe("token.changed", self._syncer.on_token_changed, group="local-list-sync")
        await self.cdrs.start()
        await self.ocpi_outbox.start()
        await self.location_pushes.start()
        await self.roaming_pushes.start()
        self.bus.subscribe("ocpi.partner.", self._partner_changed, group="partner-local-lists")
        self._started.add("worker")

    async def _serve_http(self, listeners: Listeners) -> None:
        sock = listeners.http
        self.http_port = sock.getsockname()[1]
        if self.has(Role.API):
            http_app = create_http_app(self.ctx, self.helpdesk_flows, self.opendata, self.probes)
        else:
            http_app = create_probe_app(self.probes)
        http_app.state.ocpp_port = self.ocpp_port  # as bound (the setting may say 0: any free port)
        config = uvicorn.Config(
            http_app,
            log_level=self.settings.log_level.lower(),
            log_config=None,  # uvicorn's lines go through our handlers (text or JSON)
            access_log=False,
            lifespan="off",
            http=protocol_with_header_timeout(self.settings.http_header_timeout),  # slowloris
            h11_max_incomplete_event_size=MAX_HEAD_BYTES,
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
        )
        self._http = _HttpServer(config)
        self._http_task = asyncio.create_task(self._http.serve(sockets=[sock]))
        while not self._http.started:
            if self._http_task.done():
                self._http_task.result()
            await asyncio.sleep(0.01)

    async def _partner_changed(self, event: Event) -> None:
        """A partner left (or came back): its tokens leave (or rejoin) the stations' local lists."""
        partner_id = event.data.get("partner_id")
        if isinstance(partner_id, int):
            await roaming_tokens.partner_connection_changed(self.ctx, partner_id, "system")

    async def stop(self) -> None:
        self.probes.stopping()  # /ready says 503 from now: the load balancer sends nothing new
        for chore in self._chores:
            chore.cancel()
        # awaited, so a chore cancelled inside a transaction has given its connection back
        # before the engine is disposed (else it can hold a lock past our stop)
        await asyncio.gather(*self._chores, return_exceptions=True)
        await self.opendata.stop()  # ends the live streams, which would hold the HTTP server open
        if self._http is not None and self._http_task is not None:
            web_live.stop(self._http.config.app)  # ends the console's live streams
            self._http.exit_now()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._http_task, 10)
        await self.helpdesk_flows.close()
        if "jobs" in self._started:
            await self.jobs.stop()
        if "cluster-gateway" in self._started and self.executor is not None and self.sweeper is not None:
            await self.sweeper.stop()
            await self.executor.stop()  # finishes the routed commands in hand, while their stations are here
        if "gateway" in self._started:
            await self.gateway.stop()  # each station closed with 1001: it reconnects to another gateway
        if "worker" in self._started:
            await self.cdrs.stop()
            await self.location_pushes.stop()
            await self.roaming_pushes.stop()
        await ocpi_commands.stop_running()  # commands in flight end before the database closes
        if "worker" in self._started:
            await self.ocpi_outbox.stop()
        if "bus" in self._started:
            await self.bus.stop()  # events still unsent go to the backlog table, before the engine goes
        if self._unfollow_auth is not None:
            self._unfollow_auth()
            self._unfollow_auth = None
        await self.probes.close()
        if "writer" in self._started:
            await self.writer.stop()
        if self.registry is not None and "registry" in self._started:
            await self.registry.stop()
        if self.routed is not None:
            await self.routed.close()
        if self.beacon is not None and "beacon" in self._started:
            await self.beacon.stop()  # leave the cluster now rather than when the lease runs out
        if self.redis is not None:
            with contextlib.suppress(Exception):
                await self.redis.aclose()
        self._started.clear()
        await self.claim.release()
        await self.engine.dispose()

    async def run_forever(self) -> None:
        """Serve until SIGTERM or SIGINT, then shut down in order (see `shutdown`)."""
        await self.start()
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        handled: list[signal.Signals] = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # not the main thread
                loop.add_signal_handler(sig, stopping.set)
                handled.append(sig)
        try:
            await stopping.wait()
            log.info("stekker stopping: closing stations (1001), flushing the writer and the logs")
        finally:
            try:
                await self.shutdown()
            finally:
                for sig in handled:  # a second signal during the shutdown changes nothing
                    loop.remove_signal_handler(sig)

    async def shutdown(self) -> None:
        """`stop`, bounded by STEKKER_SHUTDOWN_TIMEOUT: a hung part must not keep the process
        (and its port) from a restart."""
        timeout = self.settings.shutdown_timeout
        try:
            await asyncio.wait_for(self.stop(), timeout)
        except TimeoutError:
            log.error("shutdown did not finish within %g s (STEKKER_SHUTDOWN_TIMEOUT): exiting", timeout)
        else:
            log.info("stekker stopped")
