"""What a process tells its monitoring: `/health` (alive), `/ready` (usable) and `/metrics`.

Every process serves them on its HTTP port: the api role inside the operator's application
(`create_http_app`), a gateway or worker without the api role on a tiny application of its own
(`create_probe_app`). None of them asks for a token: a load balancer and Prometheus call them,
and an operator keeps the port off the internet, or blocks these paths at the proxy.

- `/health`: the process runs its event loop (200, always, while it answers at all).
- `/ready`: 200 only when this process can do its work now: its database answers a `SELECT 1`,
  Redis answers a PING (when configured), and its listeners serve (the app passes one check per
  listener, e.g. the OCPP gateway: up and not stopping). Otherwise 503, naming what is not ready.
  A load balancer polls it every few seconds, from several places: the database and Redis are
  asked at most once a second (`cache_seconds`), however many requests arrive, and a request
  that comes while a check is running waits for that one instead of starting another.
- `/metrics`: the Prometheus text of `stekker.metrics`, with the gauges that describe the
  process (stations held, writer queue, leases, outbox backlog, Redis and database up) set just
  before; the whole answer is reused for `cache_seconds`, so a flood costs no more than a scrape.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from sqlalchemy import func, select, text

from stekker import __version__
from stekker.db.models_ocpi import OcpiOutboxItem, OutboxStatus
from stekker.metrics import (
    DATABASE_UP,
    LEASES_HELD,
    NODE,
    OUTBOX_BACKLOG,
    REDIS_UP,
    STATIONS_CONNECTED,
    WRITER_QUEUE_DEPTH,
)
from stekker.services.context import ServiceContext

log = logging.getLogger(__name__)

#: None when the part is ready; else what is wrong, in a few words ("not listening", "stopping")
ReadyCheck = Callable[[], str | None]
#: sets some gauges from the process's state just before a scrape; must not take long
Refresher = Callable[[], Awaitable[None]]

OK = "ok"
DOWN = "down"
NOT_CONFIGURED = "not configured"
DEPENDENCIES = ("database", "redis")


@dataclass(frozen=True, slots=True)
class Dependency:
    """How the database or Redis answered this process's last check."""

    status: str  # ok, down, not configured
    detail: str | None = None  # why it is down (an error's kind, never its text: /ready is public)
    latency_ms: float | None = None

    @property
    def ok(self) -> bool:
        return self.status != DOWN

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "detail": self.detail, "latency_ms": self.latency_ms}


class Probes:
    """The state behind /health, /ready and /metrics of one process.

    `ready_checks`: name → a cheap, synchronous check of one listener (see `ReadyCheck`); a
    failing one always makes the process not ready. `critical`: the shared engines whose loss
    makes it not ready too (default both); one left out is still checked and shown, under
    `degraded`. Leave them out where a load balancer would cut what still works: a gateway
    behind HAProxy with `on-marked-down shutdown-sessions` keeps its stations through a Redis
    or PostgreSQL outage (issue 18 point 7), which a 503 from every gateway would end at once.
    `refreshers`: more gauges to set before a scrape (the app appends, e.g. the stream bus's
    lag); `stations_connected`: how many station sockets this process holds (the gateway's),
    else what `ctx.commands` says. `clock` is monotonic (the caches), `wall` the time of day.
    Call `stopping()` when the process begins to shut down: /ready answers 503 from then on,
    so the load balancer sends nothing new while the rest drains.
    """

    def __init__(
        self,
        ctx: ServiceContext,
        *,
        ready_checks: dict[str, ReadyCheck] | None = None,
        refreshers: list[Refresher] | None = None,
        critical: tuple[str, ...] = DEPENDENCIES,
        stations_connected: Callable[[], int] | None = None,
        cache_seconds: float = 1.0,
        timeout: float = 1.0,
        outbox_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.ctx = ctx
        self.ready_checks: dict[str, ReadyCheck] = dict(ready_checks or {})
        self.refreshers: list[Refresher] = list(refreshers or [])
        unknown = set(critical) - set(DEPENDENCIES)
        if unknown:
            raise ValueError(f"critical: {sorted(unknown)} are not dependencies; choose from {DEPENDENCIES}")
        self.critical = frozenset(critical)
        self._stations = stations_connected
        self.cache_seconds = cache_seconds
        self.timeout = timeout
        self.outbox_seconds = outbox_seconds
        self._clock = clock
        self.wall = wall
        self.started_at = wall()
        self._stopping = False
        self._checked: tuple[float, dict[str, Dependency]] | None = None
        self._checking: asyncio.Task[dict[str, Dependency]] | None = None
        self._scraped: tuple[float, bytes] | None = None
        self._scraping: asyncio.Task[bytes] | None = None
        self._outbox_at = float("-inf")
        self._outbox_partners: set[str] = set()
        self._leases: set[str] = set()
        self._down_logged: set[str] = set()
        self.dependency_checks = 0  # database/Redis rounds actually run (a flood must not raise it)

    def stopping(self) -> None:
        """This process is shutting down: not ready any more."""
        self._stopping = True

    async def close(self) -> None:
        """Let a check or scrape still running end (at a stop, before the engine is disposed)."""
        for task in (self._checking, self._scraping):
            if task is not None and not task.done():
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.shield(task), self.timeout * 2)

    def stations(self) -> int:
        if self._stations is not None:
            return self._stations()
        commands = self.ctx.commands
        return len(commands.connected_stations()) if commands is not None else 0

    # ---- database and Redis -------------------------------------------------------------------

    async def dependencies(self) -> dict[str, Dependency]:
        """The database's and Redis's state, checked at most once per `cache_seconds`."""
        checked = self._checked
        if checked is not None and self._clock() - checked[0] < self.cache_seconds:
            return checked[1]
        if self._checking is None or self._checking.done():
            self._checking = asyncio.create_task(self._check_dependencies(), name="probe-dependencies")
        # shielded: a caller that hangs up does not cancel the check the others wait for
        return await asyncio.shield(self._checking)

    async def _check_dependencies(self) -> dict[str, Dependency]:
        self.dependency_checks += 1
        database, redis = await asyncio.gather(self._check_database(), self._check_redis())
        found = {"database": database, "redis": redis}
        self._checked = (self._clock(), found)
        DATABASE_UP.set(1 if database.ok else 0)
        REDIS_UP.set(1 if redis.status == OK else 0)
        return found

    async def _timed(self, name: str, probe: Callable[[], Awaitable[object]]) -> Dependency:
        started = self._clock()
        try:
            async with asyncio.timeout(self.timeout):
                await probe()
        except TimeoutError:
            return self._down(name, f"no answer within {self.timeout:g} s")
        except Exception as exc:  # whatever the driver raises: the part is not usable
            return self._down(name, type(exc).__name__, exc)
        if name in self._down_logged:
            self._down_logged.discard(name)
            log.warning("readiness: %s answers again", name)
        return Dependency(OK, None, round((self._clock() - started) * 1000, 2))

    def _down(self, name: str, detail: str, exc: BaseException | None = None) -> Dependency:
        if name not in self._down_logged:  # one line per outage, not one per probe
            self._down_logged.add(name)
            log.warning("readiness: %s is not usable: %s", name, exc if exc is not None else detail)
        return Dependency(DOWN, detail)

    async def _check_database(self) -> Dependency:
        async def select_one() -> None:
            async with self.ctx.db() as db:
                await db.execute(text("SELECT 1"))

        return await self._timed("database", select_one)

    async def _check_redis(self) -> Dependency:
        redis = self.ctx.redis
        if redis is None:
            return Dependency(NOT_CONFIGURED)
        return await self._timed("redis", redis.ping)  # type: ignore[arg-type]

    # ---- the answers ---------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "version": __version__,
            "node_id": self.ctx.node.node_id,
            "roles": self.ctx.node.role_names,
            "stations_connected": self.stations(),
        }

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Whether this process is ready, and the body that says what is and is not."""
        checks: dict[str, str] = {}
        if self._stopping:
            checks["process"] = "stopping"
        for name, dependency in (await self.dependencies()).items():
            checks[name] = dependency.status if dependency.ok else f"{DOWN}: {dependency.detail}"
        for name, check in self.ready_checks.items():
            try:
                problem = check()
            except Exception as exc:  # a broken check says "not ready", never a 500
                problem = f"check failed: {type(exc).__name__}"
            checks[name] = OK if problem is None else problem
        failing = [name for name, state in checks.items() if state not in (OK, NOT_CONFIGURED)]
        not_ready = [name for name in failing if name in self.critical or name not in DEPENDENCIES]
        body = {
            "status": "not ready" if not_ready else "ready",
            "node_id": self.ctx.node.node_id,
            "roles": self.ctx.node.role_names,
            "checks": checks,
            "not_ready": not_ready,
            "degraded": [name for name in failing if name not in not_ready],
        }
        return not not_ready, body

    async def metrics(self) -> bytes:
        """The Prometheus text, refreshed at most once per `cache_seconds` (one at a time)."""
        scraped = self._scraped
        if scraped is not None and self._clock() - scraped[0] < self.cache_seconds:
            return scraped[1]
        if self._scraping is None or self._scraping.done():
            self._scraping = asyncio.create_task(self._scrape(), name="probe-metrics")
        return await asyncio.shield(self._scraping)

    async def _scrape(self) -> bytes:
        await self.refresh()
        body = generate_latest(REGISTRY)
        self._scraped = (self._clock(), body)
        return body

    # ---- gauges ----------------------------------------------------------------------------------

    async def refresh(self) -> None:
        """Set the process's gauges from its state; each refresher bounded by `timeout`."""
        node = self.ctx.node
        NODE.info({"node_id": node.node_id, "roles": ",".join(node.role_names), "version": __version__})
        STATIONS_CONNECTED.set(self.stations())
        writer = self.ctx.writer
        WRITER_QUEUE_DEPTH.set(writer.depth if writer is not None else 0)
        # one label per kind of lease: each bulk job's `job:<id>` counts under "job", so the
        # series do not grow with every job ever run
        held: dict[str, int] = {}
        for name in self.ctx.leases.held():
            kind = "job" if name.startswith("job:") else name
            held[kind] = held.get(kind, 0) + 1
        for name, count in held.items():
            LEASES_HELD.labels(name).set(count)
        for name in self._leases - set(held):  # given up since the last scrape
            LEASES_HELD.labels(name).set(0)
        self._leases |= set(held)
        await asyncio.gather(
            self._bounded(self.dependencies),
            self._bounded(self._refresh_outbox),
            *(self._bounded(refresher) for refresher in self.refreshers),
        )

    async def _bounded(self, refresher: Callable[[], Awaitable[object]]) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                await refresher()
        except Exception as exc:  # a gauge left as it was beats a failed scrape
            log.debug("metrics: %r did not refresh: %r", refresher, exc)

    async def _refresh_outbox(self) -> None:
        """Pushes waiting per partner: one grouped COUNT over the pending rows (their index),
        at most once per `outbox_seconds`."""
        if self._clock() - self._outbox_at < self.outbox_seconds:
            return
        self._outbox_at = self._clock()
        query = (
            select(OcpiOutboxItem.partner_id, func.count())
            .where(OcpiOutboxItem.status == OutboxStatus.PENDING)
            .group_by(OcpiOutboxItem.partner_id)
        )
        async with self.ctx.db() as db:
            counts = {str(partner): int(count) for partner, count in (await db.execute(query)).all()}
        for partner, count in counts.items():
            OUTBOX_BACKLOG.labels(partner).set(count)
        for partner in self._outbox_partners - counts.keys():  # drained since: 0, not a stale count
            OUTBOX_BACKLOG.labels(partner).set(0)
        self._outbox_partners |= counts.keys()


# ---- routes ----------------------------------------------------------------------------------------

router = APIRouter(tags=["meta"])


def _probes(request: Request) -> Probes:
    probes: Probes = request.app.state.probes
    return probes


@router.get("/health", summary="Liveness of this process")
async def health(request: Request) -> dict[str, Any]:
    """200 while the process answers: its version, node id, roles and station sockets held."""
    return _probes(request).health()


@router.get(
    "/ready",
    summary="Readiness of this process (database, Redis, listeners)",
    responses={503: {"description": "Not ready: `not_ready` names what is not usable."}},
)
async def ready(request: Request) -> JSONResponse:
    """200 when this process's database and Redis (when configured) answer and its listeners
    serve; 503 otherwise, with `not_ready` naming what is not. For a load balancer's check."""
    is_ready, body = await _probes(request).readiness()
    return JSONResponse(body, status_code=200 if is_ready else 503, headers={"Cache-Control": "no-store"})


@router.get(
    "/metrics",
    summary="Prometheus metrics of this process",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format."}},
)
async def metrics(request: Request) -> Response:
    """Counters, histograms and gauges of this process in the Prometheus text format."""
    return Response(await _probes(request).metrics(), media_type=CONTENT_TYPE_LATEST)


def install_probes(app: FastAPI, probes: Probes) -> None:
    """Serve the probes on `app` (the operator's application, or the probe app)."""
    app.state.probes = probes
    app.include_router(router)


def create_probe_app(probes: Probes) -> FastAPI:
    """The HTTP application of a process without the api role: the probes and nothing else."""
    app = FastAPI(
        title="Stekker probes", version=__version__, docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.ctx = probes.ctx
    install_probes(app, probes)
    return app
