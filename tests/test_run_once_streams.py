"""Work that must run once, through the cluster's real event bus (`stekker.bus.streams`): two
nodes, each with its own StreamBus on one real Redis, sharing one real PostgreSQL.

- a stop published once is built into one CDR by the two CDR workers of the group "cdr", and
  when the member that took it dies before acknowledging, the other builds it;
- a push queued in one process wakes the outbox leader in the other (fan-out `outbox.queued`);
- a bulk job created in one process runs in one worker (group "jobs"), each station once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.bus import Event
from stekker.bus.streams import StreamBus
from stekker.db.models import ChargingStation
from stekker.db.models_tariffs import Cdr
from stekker.services import jobs
from stekker.services.cdrs import CdrWorker
from stekker.services.jobs import JobRequest, JobRunner
from stekker.services.ocpi_outbox import OutboxWorker
from stekker.services.selection import Selection
from tests.observe import eventually
from tests.test_ocpi_credentials import serving
from tests.test_run_once import (
    Node,
    Partner,
    Stations,
    add_partner,
    database,
    finished_session,
    node,
    queue,
)

__all__ = ["database"]  # the fixture, used by name

CLAIM_IDLE = 1.0  # seconds before a dead member's entry goes to another member


@contextlib.asynccontextmanager
async def streamed_node(name: str, database: str, redis_url: str) -> AsyncIterator[tuple[Node, StreamBus]]:
    async with node(name, database, redis_url) as n:
        bus = StreamBus(redis_url, n.ctx.keys, name, n.ctx.db, claim_idle=CLAIM_IDLE)
        n.ctx.bus = bus

        async def record(event: Event) -> None:
            n.events.append(event)

        bus.subscribe("", record)
        await bus.start()
        try:
            yield n, bus
        finally:
            await bus.stop()


async def cdrs_of(n: Node, session_id: int) -> list[Cdr]:
    async with n.ctx.db() as db:
        return list((await db.execute(select(Cdr).where(Cdr.session_id == session_id))).scalars())


async def test_a_stop_published_once_is_one_cdr_with_two_workers(database: str, redis_url: str) -> None:
    async with (
        streamed_node("A", database, redis_url) as (a, bus_a),
        streamed_node("B", database, redis_url) as (b, _bus_b),
    ):
        session_id = await finished_session(a.ctx)
        workers = [CdrWorker(a.ctx), CdrWorker(b.ctx)]
        for worker in workers:
            await worker.start()
        try:
            await bus_a.publish(Event("session.stopped", {"session_id": session_id}))

            def announced() -> list[Event]:
                return [e for e in a.events if e.topic == "cdr.created"]

            await eventually(announced, 30)
            [cdr] = await cdrs_of(a, session_id)
            # every process heard the one announcement (fan-out), and there was only one
            await eventually(lambda: [e for e in b.events if e.topic == "cdr.created"], 30)
            assert [e.data["cdr_uid"] for e in announced()] == [cdr.cdr_uid]
        finally:
            for worker in workers:
                await worker.stop()


async def test_a_stop_taken_by_a_worker_that_dies_is_built_by_the_other(
    database: str, redis_url: str
) -> None:
    async with streamed_node("B", database, redis_url) as (b, _bus_b):
        async with streamed_node("A", database, redis_url) as (a, bus_a):
            session_id = await finished_session(a.ctx)
            taken = asyncio.Event()
            dying = CdrWorker(a.ctx)

            async def hang(session_id: int) -> None:
                taken.set()
                await asyncio.Event().wait()  # the process dies before this build ends

            dying._build = hang  # type: ignore[method-assign]
            await dying.start()
            await bus_a.publish(Event("session.stopped", {"session_id": session_id}))
            await asyncio.wait_for(taken.wait(), 30)
            a.kill()
        await dying.stop()  # its hanging build (the bus above stopped first, acknowledging nothing)
        # A is gone (its bus stopped without acknowledging); B joins the group now
        assert await cdrs_of(b, session_id) == []
        survivor = CdrWorker(b.ctx)
        await survivor.start()
        try:

            async def built() -> list[Cdr]:
                return await cdrs_of(b, session_id)

            [cdr] = await eventually(built, 30)
            assert cdr.sequence == 1
        finally:
            await survivor.stop()


async def test_a_push_queued_in_one_process_wakes_the_leader_in_another(
    database: str, redis_url: str
) -> None:
    partner = Partner()
    async with (
        serving(partner),  # type: ignore[arg-type]
        streamed_node("A", database, redis_url) as (a, _bus_a),
        streamed_node("B", database, redis_url) as (b, _bus_b),
    ):
        await add_partner(a.ctx, partner.port)
        leader = OutboxWorker(b.ctx, httpx.AsyncClient(timeout=10, headers={"x-node": "B"}), interval=3600)
        rounds = 0
        deliver_due = leader.deliver_due

        async def counted() -> int:
            nonlocal rounds
            rounds += 1
            return await deliver_due()

        leader.deliver_due = counted  # type: ignore[method-assign]
        await leader.start()
        try:
            await eventually(lambda: rounds >= 1, 20)  # its first round, at taking the lead
            await queue(a.ctx, "s1", 0)  # queued in process A, whose bus carries outbox.queued
            await eventually(lambda: partner.received, 30)
            assert partner.received == [("B", "s1", 0)]
        finally:
            await leader.stop()


async def test_a_job_created_in_one_process_runs_in_one_worker(database: str, redis_url: str) -> None:
    ids = [f"RS{i:02d}" for i in range(6)]
    stations = Stations(ids, hold="none")
    async with (
        streamed_node("A", database, redis_url) as (a, _bus_a),
        streamed_node("B", database, redis_url) as (b, _bus_b),
    ):

        async def register(db: AsyncSession) -> None:
            for station_id in ids:
                db.add(ChargingStation(id=station_id))

        await a.ctx.write(register)
        a.ctx.commands, b.ctx.commands = stations.port("A"), stations.port("B")
        # no scan during the test: only job.created (group "jobs") can start the job
        runners = [JobRunner(a.ctx, scan_interval=3600), JobRunner(b.ctx, scan_interval=3600)]
        for runner in runners:
            await runner.start()
        try:
            request = JobRequest("clear_cache", {}, Selection(station_ids=tuple(ids)), concurrency=2)
            job_id = await jobs.create_job(a.ctx, "admin", request)  # A as the API process

            async def finished() -> bool:
                return (await jobs.get_job(b.ctx, job_id)).finished_at is not None

            await eventually(finished, 30)
        finally:
            for runner in runners:
                await runner.stop()
        assert Counter(s for _, s in stations.sent) == Counter(ids)  # each station once
        assert len({n for n, _ in stations.sent}) == 1  # by one runner
