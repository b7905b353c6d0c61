"""Work that must run once in a cluster (issue 18, point 5): two "nodes" (two ServiceContexts,
each with its own node id and Redis leases on one real Redis) share one real PostgreSQL.

A node is killed the way SIGKILL kills a process: its tasks stop and it releases nothing, so
its leases stay in Redis until they expire and the other node must take the work over.
Every wait is bounded; the tests assert on outcomes (who did what, how often), never on how
long something took.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from stekker.bus import Event, InProcessBus
from stekker.cluster.leases import RedisLeases
from stekker.cluster.node import NodeInfo
from stekker.cluster.redis_link import Keys, connect
from stekker.db.base import utcnow
from stekker.db.engine import make_engine, make_session_factory
from stekker.db.migrate import upgrade
from stekker.db.models import ChargingSession, ChargingStation, SessionStatus, Token
from stekker.db.models_jobs import JobStation
from stekker.db.models_ocpi import OcpiOutboxItem, OutboxStatus
from stekker.db.models_tariffs import Cdr
from stekker.services import housekeeping, jobs, ocpi_outbox, ocpi_partners
from stekker.services.cdrs import CdrWorker, build_cdr, build_missing
from stekker.services.context import ServiceContext
from stekker.services.jobs import JobRequest, JobRunner
from stekker.services.ocpi_outbox import OutboxWorker
from stekker.services.ports import StationCommand
from stekker.services.roaming_pushes import RoamingPushes
from stekker.services.selection import Selection
from tests.conftest import _empty_postgres, make_settings
from tests.observe import eventually
from tests.test_ocpi_credentials import serving

LEASE = 1.0  # seconds: the shortest lease the settings allow, so takeovers come quickly


class MortalLeases(RedisLeases):
    """RedisLeases that can die like a killed process: once `dead`, nothing is released (the
    keys stay until they expire) and nothing is taken. Counts the tries per lease name."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.dead = False
        self.tries: Counter[str] = Counter()

    async def try_take(self, name: str, ttl: float) -> bool:
        self.tries[name] += 1
        if self.dead:
            return False
        return await super().try_take(name, ttl)

    async def release(self, name: str) -> None:
        if not self.dead:
            await super().release(name)


@dataclass
class Node:
    """One "process" of the cluster: its context, engine and Redis client."""

    name: str
    ctx: ServiceContext
    leases: MortalLeases
    engine: AsyncEngine
    events: list[Event] = field(default_factory=list)

    def kill(self) -> None:
        """From now on this node releases nothing and takes nothing (its tasks are stopped by
        the test, as they would die with the process)."""
        self.leases.dead = True


@pytest.fixture
async def database(pg_database: str) -> str:
    engine = make_engine(pg_database)
    await upgrade(engine)
    await engine.dispose()
    await _empty_postgres(pg_database)
    return pg_database


@contextlib.asynccontextmanager
async def node(
    name: str, database: str, redis_url: str, bus: InProcessBus | None = None
) -> AsyncIterator[Node]:
    settings = make_settings(
        database, redis_url=redis_url, node_id=name, cluster_lease_seconds=LEASE, ocpi_push_max_attempts=3
    )
    engine = make_engine(database)
    redis = connect(redis_url)
    keys = Keys(settings.redis_prefix)
    leases = MortalLeases(redis, keys, name)
    ctx = ServiceContext(
        settings,
        make_session_factory(engine),
        bus or InProcessBus(),
        node=NodeInfo(name),
        redis=redis,
        keys=keys,
        leases=leases,
    )
    this = Node(name, ctx, leases, engine)

    async def record(event: Event) -> None:
        this.events.append(event)

    ctx.bus.subscribe("", record)
    try:
        yield this
    finally:
        await redis.aclose()
        await engine.dispose()


@contextlib.asynccontextmanager
async def two_nodes(
    database: str, redis_url: str, shared_bus: bool = False
) -> AsyncIterator[tuple[Node, Node]]:
    """Nodes A and B. `shared_bus`: one in-process bus for both, standing in for the fan-out
    side of the cluster's bus (every subscriber in every process sees every event)."""
    bus = InProcessBus() if shared_bus else None
    async with node("A", database, redis_url, bus) as a, node("B", database, redis_url, bus) as b:
        yield a, b


async def cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


# ---- housekeeping chores --------------------------------------------------------------------------


async def test_a_chore_runs_on_one_node_and_moves_when_its_node_dies(database: str, redis_url: str) -> None:
    runs: list[str] = []

    async def work(ctx: ServiceContext) -> int:
        runs.append(ctx.node.node_id)
        await asyncio.sleep(0)
        return 0

    chore = housekeeping.Chore("test-chore", lambda ctx: 0.02, work)
    async with two_nodes(database, redis_url) as (a, b):
        a_tasks = housekeeping.start(a.ctx, [chore])
        await eventually(lambda: runs.count("A") >= 3, 20)
        b_tasks = housekeeping.start(b.ctx, [chore])
        try:
            # B keeps asking for the lease and never gets it while A lives
            await eventually(lambda: b.leases.tries["chore:test-chore"] >= 4, 20)
            assert set(runs) == {"A"}
            assert await a.leases.holder("chore:test-chore") == "A"

            a.kill()
            await cancel(a_tasks)  # the process is gone: its lease is left to expire
            ran_on_a = runs.count("A")
            await eventually(lambda: runs.count("B") >= 3, 20)
            assert runs.count("A") == ran_on_a
            # one runner at a time: every run of A came before every run of B
            assert runs == ["A"] * ran_on_a + ["B"] * (len(runs) - ran_on_a)
            assert await b.leases.holder("chore:test-chore") == "B"
        finally:
            await cancel(a_tasks + b_tasks)
        # a clean stop releases the lease at once (no one need wait it out)
        assert await b.leases.holder("chore:test-chore") is None


async def test_every_chore_has_its_own_lease(database: str, redis_url: str) -> None:
    async with node("A", database, redis_url) as a:
        tasks = housekeeping.start(a.ctx)
        try:
            names = {f"chore:{c.name}" for c in housekeeping.CHORES}
            assert len(names) == 4
            await eventually(lambda: set(a.leases.held()) >= names, 20)
        finally:
            await cancel(tasks)


# ---- OCPI outbox ---------------------------------------------------------------------------------


class Partner:
    """A partner's sessions receiver over loopback: records (node, key, n) of every request in
    the order they arrive; the `hold`-th request is kept unanswered until `gate` opens."""

    def __init__(self, hold: int | None = None) -> None:
        self.received: list[tuple[str, str, int]] = []
        self.hold = hold
        self.gate = asyncio.Event()
        self.held = asyncio.Event()
        self.port = 0

    def app(self) -> Starlette:
        async def sessions(request: Request) -> JSONResponse:
            body = await request.json()
            key = request.url.path.rsplit("/", 1)[-1]
            self.received.append((request.headers.get("x-node", "?"), key, int(body["n"])))
            if self.hold is not None and len(self.received) == self.hold:
                self.held.set()
                await self.gate.wait()
            return JSONResponse({"status_code": 1000, "timestamp": "2026-12-07T00:00:00Z"})

        return Starlette(routes=[Route("/sessions/{rest:path}", sessions, methods=["PUT", "PATCH"])])


async def add_partner(ctx: ServiceContext, port: int) -> int:
    return await ocpi_partners.add_registered_partner(
        ctx,
        name="ABC",
        country_code="NL",
        party_id="ABC",
        token="their-C",
        endpoints={"sessions:RECEIVER": f"http://127.0.0.1:{port}/sessions"},
        outgoing_token="their-B",
    )


async def queue(ctx: ServiceContext, key: str, n: int) -> None:
    method = "PUT" if n == 0 else "PATCH"
    queued = await ocpi_outbox.enqueue_for_partners(
        ctx, module="sessions", role="RECEIVER", kind="sessions", key=key, method=method,
        path=f"/NL/STK/{key}", body={"n": n},
    )  # fmt: skip
    assert queued == 1


def worker(n: Node, interval: float = 0.05) -> OutboxWorker:
    return OutboxWorker(n.ctx, httpx.AsyncClient(timeout=10, headers={"x-node": n.name}), interval=interval)


async def outbox_counts(ctx: ServiceContext) -> Counter[str]:
    async with ctx.db() as db:
        rows = await db.execute(select(OcpiOutboxItem.status, func.count()).group_by(OcpiOutboxItem.status))
        return Counter({status: n for status, n in rows})


async def test_two_outbox_workers_deliver_each_push_once_and_the_survivor_finishes(
    database: str, redis_url: str
) -> None:
    keys = [f"s{i}" for i in range(10)]
    partner = Partner(hold=20)  # the 20th request: in flight when its deliverer dies
    async with serving(partner), two_nodes(database, redis_url, shared_bus=True) as (a, b):  # type: ignore[arg-type]
        await add_partner(a.ctx, partner.port)
        wa, wb = worker(a), worker(b)
        await wa.start()
        await eventually(lambda: a.leases.held() == ["ocpi-outbox"], 20)
        await wb.start()
        try:
            for n in range(5):  # 50 pushes: 10 objects, each a PUT and four PATCHes, in order
                for key in keys:
                    await queue(a.ctx, key, n)
            await asyncio.wait_for(partner.held.wait(), 30)
            assert {node for node, _, _ in partner.received} == {"A"}  # one deliverer at a time
            assert b.leases.tries["ocpi-outbox"] >= 1 and not b.leases.held()
            in_flight = partner.received[-1][1:]

            a.kill()
            await wa.stop()  # the process dies with the 20th push sent and not marked delivered
            partner.gate.set()

            async def all_delivered() -> bool:
                return (await outbox_counts(b.ctx)) == Counter({OutboxStatus.DELIVERED: 50})

            await eventually(all_delivered, 30)
        finally:
            partner.gate.set()
            await wa.stop()
            await wb.stop()

    received = partner.received
    senders = [node for node, _, _ in received]
    first_b = senders.index("B")
    assert set(senders[:first_b]) == {"A"} and set(senders[first_b:]) == {"B"}  # never both at once
    copies = Counter((key, n) for _, key, n in received)
    assert set(copies) == {(key, n) for key in keys for n in range(5)}  # none lost
    # the one push in flight when its deliverer died arrives twice (documented); nothing else
    assert {push: count for push, count in copies.items() if count > 1} == {in_flight: 2}
    for key in keys:  # and each object's pushes in order
        ns = [n for _, k, n in received if k == key]
        assert sorted(set(ns)) == list(range(5)) and ns == sorted(ns)


async def test_a_push_queued_in_another_process_wakes_the_leader(database: str, redis_url: str) -> None:
    partner = Partner()
    async with serving(partner), two_nodes(database, redis_url, shared_bus=True) as (a, b):  # type: ignore[arg-type]
        await add_partner(a.ctx, partner.port)
        wb = worker(b, interval=3600)  # its poll would not come during this test
        rounds = 0
        deliver_due = wb.deliver_due

        async def counted() -> int:
            nonlocal rounds
            rounds += 1
            return await deliver_due()

        wb.deliver_due = counted  # type: ignore[method-assign]
        await wb.start()
        try:
            await eventually(lambda: rounds >= 1, 20)  # the round at taking the lead: nothing due
            await queue(a.ctx, "s1", 0)  # queued by "A" (an API process), announced on the bus
            await eventually(lambda: partner.received, 20)
            assert partner.received == [("B", "s1", 0)]
        finally:
            await wb.stop()


async def test_a_repeated_push_still_waiting_is_not_queued_twice(database: str, redis_url: str) -> None:
    async with node("A", database, redis_url) as a:
        partner_id = await add_partner(a.ctx, 9)
        at = utcnow()

        async def twice(body: dict[str, Any]) -> list[bool]:
            async def job(db: AsyncSession) -> bool:
                return await ocpi_outbox.enqueue_unless_pending(
                    db, partner_id=partner_id, kind="locations", key="location:1", method="PATCH",
                    url="http://127.0.0.1:9/l/1/E1", body=body, at=at,
                )  # fmt: skip

            return [await a.ctx.write(job), await a.ctx.write(job)]

        assert await twice({"status": "CHARGING"}) == [True, False]  # a redelivered event
        assert await twice({"status": "AVAILABLE"}) == [True, False]  # a change is queued
        assert await twice({"status": "CHARGING"}) == [True, False]  # and a change back too
        assert (await outbox_counts(a.ctx))[OutboxStatus.PENDING] == 3


# ---- bulk jobs -----------------------------------------------------------------------------------


class Stations:
    """The cluster's command port as the job runners see it, one view per node: every station
    is connected and accepts; `hold` keeps one station's call unanswered (the runner is then
    mid-job). Records which node sent what to whom."""

    def __init__(self, ids: list[str], hold: str) -> None:
        self.ids = ids
        self.hold = hold
        self.held = asyncio.Event()
        self.sent: list[tuple[str, str]] = []  # (node, station)

    def port(self, node_name: str) -> Any:
        stations = self

        class Port:
            def is_connected(self, station_id: str) -> bool:
                return station_id in stations.ids

            def connected_stations(self) -> list[str]:
                return list(stations.ids)

            def protocol(self, station_id: str) -> str | None:
                return "ocpp1.6"

            async def send(
                self, station_id: str, command: StationCommand, timeout: float | None = None
            ) -> dict[str, Any]:
                stations.sent.append((node_name, station_id))
                if station_id == stations.hold:
                    stations.held.set()
                    await asyncio.Event().wait()  # never answers (until its node dies)
                return {"status": "Accepted"}

        return Port()


async def test_a_bulk_job_runs_in_one_runner_and_the_other_finishes_it(database: str, redis_url: str) -> None:
    ids = [f"RO{i:02d}" for i in range(10)]
    stations = Stations(ids, hold="RO03")
    async with two_nodes(database, redis_url) as (a, b):

        async def register(db: AsyncSession) -> None:
            for station_id in ids:
                db.add(ChargingStation(id=station_id))

        await a.ctx.write(register)
        a.ctx.commands, b.ctx.commands = stations.port("A"), stations.port("B")
        runners = {"A": JobRunner(a.ctx, scan_interval=0.2), "B": JobRunner(b.ctx, scan_interval=0.2)}
        nodes = {"A": a, "B": b}
        for runner in runners.values():
            await runner.start()
        try:
            request = JobRequest("clear_cache", {}, Selection(station_ids=tuple(ids)), concurrency=1)
            job_id = await jobs.create_job(a.ctx, "admin", request)
            # job.created reaches one member of the group "jobs": here A's runner
            await runners["A"]._on_created(Event("job.created", {"job_id": job_id}))
            await asyncio.wait_for(stations.held.wait(), 30)
            holder = "A" if runners["A"].running() == [job_id] else "B"
            other = "B" if holder == "A" else "A"
            assert runners[holder].running() == [job_id] and runners[other].running() == []
            # the other worker has scanned meanwhile and left the job alone
            await eventually(lambda: nodes[other].leases.tries[f"job:{job_id}"] >= 2, 20)
            assert runners[other].running() == []
            assert {node for node, _ in stations.sent} == {holder}
            assert [s for _, s in stations.sent] == ids[:4]
            # the progress is in the database: the other process reads it
            view = await jobs.get_job(nodes[other].ctx, job_id)
            assert (view.counts["accepted"], view.counts["sent"], view.counts["queued"]) == (3, 1, 6)

            nodes[holder].kill()
            await runners[holder].stop()  # dies with RO03's call in flight

            async def finished() -> bool:
                return (await jobs.get_job(nodes[other].ctx, job_id)).finished_at is not None

            await eventually(finished, 30)
        finally:
            for runner in runners.values():
                await runner.stop()

        assert Counter(s for _, s in stations.sent) == Counter(ids)  # every station sent once
        assert [s for n, s in stations.sent if n == other] == ids[4:]
        async with b.ctx.db() as db:
            rows = {
                r.station_id: r
                for r in (await db.execute(select(JobStation))).scalars()
                if r.job_id == job_id
            }
        assert {sid: r.state for sid, r in rows.items()} == {
            sid: "timed_out" if sid == "RO03" else "accepted" for sid in ids
        }
        assert "outcome unknown" in (rows["RO03"].error or "")
        view = await jobs.get_job(a.ctx, job_id)
        assert view.state == "completed"
        assert await b.leases.holder(f"job:{job_id}") is None  # released when it finished


async def test_a_job_announced_twice_runs_once(database: str, redis_url: str) -> None:
    """`job.created` delivered again (to another member after a death, or twice here) and the
    scan at once: one run, each station sent once."""
    ids = [f"RT{i:02d}" for i in range(6)]
    stations = Stations(ids, hold="none")
    async with two_nodes(database, redis_url) as (a, b):

        async def register(db: AsyncSession) -> None:
            for station_id in ids:
                db.add(ChargingStation(id=station_id))

        await a.ctx.write(register)
        a.ctx.commands, b.ctx.commands = stations.port("A"), stations.port("B")
        ra, rb = JobRunner(a.ctx, scan_interval=3600), JobRunner(b.ctx, scan_interval=3600)
        request = JobRequest("clear_cache", {}, Selection(station_ids=tuple(ids)), concurrency=3)
        job_id = await jobs.create_job(a.ctx, "admin", request)
        event = Event("job.created", {"job_id": job_id})
        try:
            await asyncio.gather(
                ra._on_created(event), rb._on_created(event), ra._on_created(event), ra.scan(), rb.scan()
            )

            async def finished() -> bool:
                return (await jobs.get_job(a.ctx, job_id)).finished_at is not None

            await eventually(finished, 30)
        finally:
            await ra.stop()
            await rb.stop()
        assert Counter(s for _, s in stations.sent) == Counter(ids)
        assert len({n for n, _ in stations.sent}) == 1


# ---- CDRs ----------------------------------------------------------------------------------------


async def finished_session(ctx: ServiceContext, station_id: str = "CDR01") -> int:
    start = utcnow() - timedelta(hours=1)

    async def job(db: AsyncSession) -> int:
        db.add(ChargingStation(id=station_id))
        await db.flush()
        session = ChargingSession(
            station_id=station_id,
            evse_number=1,
            connector_number=1,
            transaction_id="1",
            start_key=f"{station_id}-1",
            token_uid="TOKEN1",
            auth_status="Accepted",
            status=SessionStatus.COMPLETED,
            start_time=start,
            stop_time=start + timedelta(minutes=30),
            meter_start_wh=1000,
            meter_stop_wh=8000,
            energy_wh=7000,
            updated_at=start,
        )
        db.add(session)
        await db.flush()
        return session.id

    session_id: int = await ctx.write(job)
    return session_id


async def test_the_cdr_of_a_session_is_built_once_by_two_workers(database: str, redis_url: str) -> None:
    async with two_nodes(database, redis_url) as (a, b):
        session_id = await finished_session(a.ctx)
        wa, wb = CdrWorker(a.ctx), CdrWorker(b.ctx)
        await wa.start()
        await wb.start()
        try:
            stopped = Event("session.stopped", {"session_id": session_id})
            # both members get the same stop (a redelivery racing the first), and the sweep too
            await asyncio.gather(wa._on_stopped(stopped), wb._on_stopped(stopped), build_missing(b.ctx))
            await wa._on_stopped(stopped)  # and once more later
        finally:
            await wa.stop()
            await wb.stop()
        async with a.ctx.db() as db:
            cdrs = list((await db.execute(select(Cdr).where(Cdr.session_id == session_id))).scalars())
        assert [c.sequence for c in cdrs] == [1]
        for _ in range(20):  # the buses run their handlers as tasks
            await asyncio.sleep(0)
        announced = [e for n in (a, b) for e in n.events if e.topic == "cdr.created"]
        assert [e.data["cdr_uid"] for e in announced] == [cdrs[0].cdr_uid]  # announced once


# ---- roaming pushes --------------------------------------------------------------------------------


async def roaming_session(ctx: ServiceContext) -> tuple[int, int]:
    """A partner receiving sessions and CDRs (never reached: no outbox runs here), and a
    finished session of its driver's token. Returns (partner id, session id)."""
    partner_id = await ocpi_partners.add_registered_partner(
        ctx,
        name="ABC",
        country_code="NL",
        party_id="ABC",
        token="their-C",
        endpoints={
            "sessions:RECEIVER": "http://127.0.0.1:9/sessions",
            "cdrs:RECEIVER": "http://127.0.0.1:9/cdrs",
        },
        outgoing_token="their-B",
    )
    session_id = await finished_session(ctx, "ROAM1")

    async def job(db: AsyncSession) -> None:
        token = Token(uid="TOKEN1", country_code="NL", party_id="ABC", ocpi_partner_id=partner_id)
        db.add(token)
        await db.flush()
        session = await db.get(ChargingSession, session_id)
        assert session is not None
        session.token_id = token.id

    await ctx.write(job)
    return partner_id, session_id


async def pushes(ctx: ServiceContext, kind: str) -> list[OcpiOutboxItem]:
    async with ctx.db() as db:
        query = select(OcpiOutboxItem).where(OcpiOutboxItem.kind == kind).order_by(OcpiOutboxItem.id)
        return list((await db.execute(query)).scalars())


async def test_a_cdr_handled_by_two_workers_is_posted_to_the_partner_once(
    database: str, redis_url: str
) -> None:
    async with two_nodes(database, redis_url) as (a, b):
        _partner_id, session_id = await roaming_session(a.ctx)
        cdr = await build_cdr(a.ctx, session_id)
        assert cdr is not None
        pa, pb = RoamingPushes(a.ctx), RoamingPushes(b.ctx)
        await pa.start()
        await pb.start()
        try:
            created = Event("cdr.created", {"session_id": session_id, "cdr_uid": cdr.cdr_uid})
            await asyncio.gather(pa._on_event(created), pb._on_event(created), pa._on_event(created))
            await pb._on_event(created)  # and redelivered later
        finally:
            await pa.stop()
            await pb.stop()
        [posted] = await pushes(a.ctx, "cdrs")
        assert posted.method == "POST" and posted.body["id"] == cdr.cdr_uid


async def test_an_older_picture_of_a_session_is_not_queued_after_a_newer_one(
    database: str, redis_url: str
) -> None:
    """Node A reads the running session and is slow to queue its PUT; meanwhile the session
    ends and node B queues the finished one. A's stale PUT must not follow B's."""
    async with two_nodes(database, redis_url) as (a, b):
        _partner_id, session_id = await roaming_session(a.ctx)
        start = utcnow() - timedelta(hours=1)

        async def running(db: AsyncSession) -> None:
            session = await db.get(ChargingSession, session_id)
            assert session is not None
            session.status, session.stop_time, session.updated_at = SessionStatus.ACTIVE, None, start

        await a.ctx.write(running)
        pa, pb = RoamingPushes(a.ctx), RoamingPushes(b.ctx)
        await pa.start()
        await pb.start()
        read, go_on = asyncio.Event(), asyncio.Event()
        write = a.ctx.write

        async def slow_write(job: Any) -> Any:
            read.set()  # A has built its picture of the session
            await go_on.wait()
            return await write(job)

        a.ctx.write = slow_write  # type: ignore[method-assign]
        try:
            started = asyncio.create_task(pa._on_event(Event("session.started", {"session_id": session_id})))
            await asyncio.wait_for(read.wait(), 20)

            async def ended(db: AsyncSession) -> None:
                session = await db.get(ChargingSession, session_id)
                assert session is not None
                session.status, session.stop_time = SessionStatus.COMPLETED, start + timedelta(minutes=30)
                session.updated_at = start + timedelta(minutes=30)

            await b.ctx.write(ended)
            await pb._on_event(Event("session.stopped", {"session_id": session_id}))
            go_on.set()
            await asyncio.wait_for(started, 20)
        finally:
            go_on.set()
            await pa.stop()
            await pb.stop()
        queued = await pushes(a.ctx, "sessions")
        assert [(p.method, p.body["status"]) for p in queued] == [("PUT", "COMPLETED")]
        # neither worker saw the session's CDR, so neither may keep its lock for ever
        assert pa._locks == {} and pb._locks == {}


async def test_a_worker_forgets_the_meter_throttle_of_sessions_it_never_sees_end(
    database: str, redis_url: str
) -> None:
    """In a cluster another member may handle a session's stop: this worker's memory of the
    session's last meter push is dropped once it no longer throttles anything."""
    async with node("A", database, redis_url) as a:
        clock = [utcnow()]
        a.ctx.clock = lambda: clock[0]
        pushes_a = RoamingPushes(a.ctx, meter_interval=timedelta(seconds=60))
        pushes_a._meter_memory = 2
        await pushes_a.start()
        try:
            for session_id in (901, 902):  # no such sessions: nothing is queued, only remembered
                await pushes_a._on_event(Event("session.meter", {"session_id": session_id}))
            clock[0] += timedelta(minutes=2)
            await pushes_a._on_event(Event("session.meter", {"session_id": 903}))
            assert set(pushes_a._last_meter) == {903}  # the two older ones throttle nothing any more
        finally:
            await pushes_a.stop()
