"""The order an eMSP receives a session's pushes in, whatever order the events come in
(issue 18 follow-up: a worker that dies hands its events to another, late).

Per session the partner must see its states in the order they happened (a later state never
followed by an earlier one) and the CDR only after the session's last push. These tests drive
the push listener (`RoamingPushes`) with events in hostile orders, two "workers" (two service
contexts) on one real PostgreSQL, and deliver through the real `OutboxWorker` to a partner
behind an httpx MockTransport that records (and may refuse) what it is sent. The clock is
injected: a retry is due because the test moves the clock, never because time passed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.bus import Event, InProcessBus
from stekker.db.engine import make_engine, make_session_factory
from stekker.db.models import ChargingSession, ChargingStation, SessionStatus, Token
from stekker.db.models_ocpi import OcpiOutboxItem, OutboxStatus
from stekker.services import ocpi_partners
from stekker.services.cdrs import build_cdr
from stekker.services.context import ServiceContext
from stekker.services.ocpi_outbox import OutboxWorker
from stekker.services.roaming_pushes import RoamingPushes
from tests.conftest import make_settings
from tests.test_run_once import database

__all__ = ["database"]  # the fixture, used by name

START = datetime(2026, 12, 1, 10, 0, 0, 100_000, tzinfo=UTC)


class Emsp:
    """The partner's receivers: records (method, path, body) of every push it accepts;
    refuses (HTTP 503) the requests whose 1-based number is in `refuse`."""

    def __init__(self, refuse: set[int] | None = None) -> None:
        self.refuse = refuse or set()
        self.requests = 0
        self.got: list[tuple[str, str, Any]] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        import json

        self.requests += 1
        if self.requests in self.refuse:
            return httpx.Response(503, json={"status_code": 3000})
        self.got.append((request.method, request.url.path, json.loads(request.content or b"null")))
        return httpx.Response(200, json={"status_code": 1000, "timestamp": "2030-01-01T00:00:00Z"})

    def seen(self) -> list[tuple[str, str | None]]:
        """What arrived, shortly: ("PUT", status), ("PATCH", status or None), ("CDR", None)."""
        return [("CDR" if m == "POST" else m, body.get("status")) for m, _, body in self.got]


def assert_valid_order(got: list[tuple[str, str, Any]]) -> None:
    """The rule the eMSP relies on: the session's states never go back, it has a state before
    any PATCH, and its CDR comes after the last session push."""
    rank = {"PENDING": 0, "ACTIVE": 1, "COMPLETED": 2, "INVALID": 2}
    best = -1
    cdr_at = None
    for n, (method, _path, body) in enumerate(got):
        if method == "POST":
            assert cdr_at is None, f"two CDRs: {got}"
            cdr_at = n
            continue
        assert cdr_at is None, f"a session push after the CDR: {got}"
        if method == "PATCH":
            assert best >= 0, f"a PATCH before any PUT: {got}"
        status = body.get("status")
        if status is not None:
            assert rank[status] >= best, f"{status} after a later state: {got}"
            best = rank[status]
    assert cdr_at is not None and best == rank["COMPLETED"], got


class Clock:
    """The injected clock of a test: moves only when told."""

    def __init__(self) -> None:
        self.at = START

    def __call__(self) -> datetime:
        return self.at


@contextlib.asynccontextmanager
async def worker_ctx(database: str, clock: Callable[[], datetime]) -> AsyncIterator[ServiceContext]:
    """One worker process's service context (no Redis: the order must hold in the data)."""
    engine = make_engine(database)
    settings = make_settings(database, ocpi_push_max_attempts=3)
    try:
        yield ServiceContext(settings, make_session_factory(engine), InProcessBus(), clock=clock)
    finally:
        await engine.dispose()


async def driver_session(ctx: ServiceContext) -> int:
    """A registered partner with sessions and CDRs receivers, and a running session of its
    driver's card. Returns the session id."""
    partner_id = await ocpi_partners.add_registered_partner(
        ctx, name="ABC", country_code="NL", party_id="ABC", token="their-C",
        endpoints={"sessions:RECEIVER": "http://emsp.test/sessions", "cdrs:RECEIVER": "http://emsp.test/cdrs"},
        outgoing_token="their-B",
    )  # fmt: skip

    async def job(db: AsyncSession) -> int:
        db.add(ChargingStation(id="ORDER1"))
        token = Token(uid="CARD1", country_code="NL", party_id="ABC", ocpi_partner_id=partner_id)
        db.add(token)
        await db.flush()
        session = ChargingSession(
            station_id="ORDER1", evse_number=1, connector_number=1, transaction_id="1",
            start_key="ORDER1-1", token_uid="CARD1", token_id=token.id, auth_status="Accepted",
            status=SessionStatus.ACTIVE, start_time=START, meter_start_wh=1000, meter_last_wh=1000,
            updated_at=START,
        )  # fmt: skip
        db.add(session)
        await db.flush()
        return session.id

    session_id: int = await ctx.write(job)
    return session_id


async def change(ctx: ServiceContext, session_id: int, **values: Any) -> None:
    """The gateway's write: the session moves on (its `updated_at` with it, as `values` say)."""

    async def job(db: AsyncSession) -> None:
        session = await db.get(ChargingSession, session_id)
        assert session is not None
        for name, value in values.items():
            setattr(session, name, value)

    await ctx.write(job)


async def stop(ctx: ServiceContext, session_id: int, at: datetime) -> str:
    """The session ends at `at` and its CDR is built; returns the CDR's uid."""
    await change(
        ctx, session_id, status=SessionStatus.COMPLETED, stop_time=at, meter_stop_wh=8000,
        meter_last_wh=8000, energy_wh=7000, updated_at=at,
    )  # fmt: skip
    cdr = await build_cdr(ctx, session_id)
    assert cdr is not None
    return cdr.cdr_uid


def event(topic: str, session_id: int, **data: Any) -> Event:
    return Event(topic, {"session_id": session_id, **data})


async def outbox(ctx: ServiceContext) -> list[OcpiOutboxItem]:
    async with ctx.db() as db:
        return list((await db.execute(select(OcpiOutboxItem).order_by(OcpiOutboxItem.id))).scalars())


async def deliver_all(ctx: ServiceContext, emsp: Emsp, clock: Clock, rounds: int = 20) -> None:
    """Outbox rounds until nothing is pending, the clock moved past each retry's backoff."""
    deliverer = OutboxWorker(ctx, httpx.AsyncClient(transport=httpx.MockTransport(emsp.handler)))
    try:
        for _ in range(rounds):
            await deliverer.deliver_due()
            if not [row for row in await outbox(ctx) if row.status == OutboxStatus.PENDING]:
                return
            clock.at += timedelta(hours=2)  # every backoff is at most an hour
        raise AssertionError(f"still pending after {rounds} rounds: {await outbox(ctx)}")
    finally:
        await deliverer.stop()


async def test_a_picture_made_stale_within_the_same_second_is_not_queued_after_the_newer_one(
    database: str,
) -> None:
    """Worker A reads the running session and is slow to queue its PUT; within the same second
    (OCPI's last_updated has whole seconds) the session ends and worker B queues the finished
    one. A's ACTIVE must not follow B's COMPLETED."""
    clock = Clock()
    async with worker_ctx(database, clock) as a, worker_ctx(database, clock) as b:
        session_id = await driver_session(a)
        pa, pb = RoamingPushes(a), RoamingPushes(b)
        await pa.start()
        await pb.start()
        read, go_on = asyncio.Event(), asyncio.Event()
        write = a.write

        async def slow_write(job: Any) -> Any:
            read.set()  # A has built its picture
            await go_on.wait()
            return await write(job)

        a.write = slow_write  # type: ignore[method-assign]
        try:
            started = asyncio.create_task(pa._on_event(event("session.started", session_id)))
            await asyncio.wait_for(read.wait(), 20)
            uid = await stop(b, session_id, START + timedelta(microseconds=500_000))  # same second
            await pb._on_event(event("session.stopped", session_id))
            go_on.set()
            await asyncio.wait_for(started, 20)
            await pb._on_event(event("cdr.created", session_id, cdr_uid=uid))
        finally:
            go_on.set()
            await pa.stop()
            await pb.stop()
        queued = [(row.method, (row.body or {}).get("status")) for row in await outbox(a)]
        assert ("PUT", "ACTIVE") not in queued[queued.index(("PUT", "COMPLETED")) :], queued
        emsp = Emsp()
        await deliver_all(a, emsp, clock)
    assert_valid_order(emsp.got)


async def test_a_redelivered_start_after_the_stop_and_cdr_adds_nothing_after_the_cdr(database: str) -> None:
    """The worker that took `session.started` died; its event comes back to another worker
    after the session ended, its stop was pushed and its CDR queued."""
    clock = Clock()
    async with worker_ctx(database, clock) as ctx:
        session_id = await driver_session(ctx)
        pushes = RoamingPushes(ctx)
        await pushes.start()
        try:
            uid = await stop(ctx, session_id, START + timedelta(minutes=30))
            await pushes._on_event(event("session.stopped", session_id))  # first: PUT, as no PUT went
            await pushes._on_event(event("cdr.created", session_id, cdr_uid=uid))
            await pushes._on_event(event("session.started", session_id))  # redelivered, late
            await pushes._on_event(event("session.meter", session_id))
            await pushes._on_event(event("session.stopped", session_id))  # and this one again
        finally:
            await pushes.stop()
        emsp = Emsp()
        await deliver_all(ctx, emsp, clock)
    assert emsp.seen() == [("PUT", "COMPLETED"), ("CDR", None)]
    assert_valid_order(emsp.got)


async def test_a_cdr_event_before_the_stop_event_is_preceded_by_the_final_state(database: str) -> None:
    """`cdr.created` handled before the late `session.stopped` (its first worker died): the
    session's final state is queued before the CDR, and the late stop adds nothing after it."""
    clock = Clock()
    async with worker_ctx(database, clock) as a, worker_ctx(database, clock) as b:
        session_id = await driver_session(a)
        pa, pb = RoamingPushes(a), RoamingPushes(b)
        await pa.start()
        await pb.start()
        try:
            await pa._on_event(event("session.started", session_id))
            uid = await stop(a, session_id, START + timedelta(minutes=30))
            await pb._on_event(event("cdr.created", session_id, cdr_uid=uid))
            await pa._on_event(event("session.stopped", session_id))  # redelivered after the CDR
        finally:
            await pa.stop()
            await pb.stop()
        emsp = Emsp()
        await deliver_all(a, emsp, clock)
    assert emsp.seen() == [("PUT", "ACTIVE"), ("PATCH", "COMPLETED"), ("CDR", None)]
    assert_valid_order(emsp.got)


async def test_a_refused_first_put_then_a_newer_put_arrive_in_order(database: str) -> None:
    """The partner refuses the first PUT (ACTIVE); a redelivered start queues the session as
    it is now (a newer ACTIVE picture) while the first waits for its retry; then the stop and
    the CDR. The retried first PUT arrives first, never after the newer pushes."""
    clock = Clock()
    async with worker_ctx(database, clock) as ctx:
        session_id = await driver_session(ctx)
        pushes = RoamingPushes(ctx)
        emsp = Emsp(refuse={1})
        deliverer = OutboxWorker(ctx, httpx.AsyncClient(transport=httpx.MockTransport(emsp.handler)))
        await pushes.start()
        try:
            await pushes._on_event(event("session.started", session_id))
            assert await deliverer.deliver_due() == 0  # refused: it waits for its retry
            await change(ctx, session_id, meter_last_wh=4000, updated_at=START + timedelta(minutes=10))
            await pushes._on_event(event("session.started", session_id))  # redelivered: a newer PUT
            assert await deliverer.deliver_due() == 0  # the newer one waits behind the first
            uid = await stop(ctx, session_id, START + timedelta(minutes=30))
            await pushes._on_event(event("session.stopped", session_id))
            await pushes._on_event(event("cdr.created", session_id, cdr_uid=uid))
        finally:
            await pushes.stop()
            await deliverer.stop()
        await deliver_all(ctx, emsp, clock)
    assert emsp.seen() == [("PUT", "ACTIVE"), ("PUT", "ACTIVE"), ("PATCH", "COMPLETED"), ("CDR", None)]
    first, newer = emsp.got[0][2], emsp.got[1][2]
    assert first["kwh"] < newer["kwh"]  # the older picture first
    assert_valid_order(emsp.got)


async def test_a_cdr_waits_for_the_sessions_patch_until_it_is_delivered_or_dead(database: str) -> None:
    """The PUT went; the stop's PATCH is refused and waits for its retry: the CDR queued after
    it waits too, and goes once the PATCH is delivered. A PATCH that is never taken does not
    hold the CDR for ever: once it is dead (attempts run out) the CDR goes."""
    for refuse, expected in (
        ({2}, [("PUT", "ACTIVE"), ("PATCH", "COMPLETED"), ("CDR", None)]),
        ({2, 3, 4}, [("PUT", "ACTIVE"), ("CDR", None)]),  # 3 attempts (the settings): dead
    ):
        clock = Clock()
        async with worker_ctx(database, clock) as ctx:
            await _empty(ctx)
            session_id = await driver_session(ctx)
            pushes = RoamingPushes(ctx)
            emsp = Emsp(refuse=refuse)
            deliverer = OutboxWorker(ctx, httpx.AsyncClient(transport=httpx.MockTransport(emsp.handler)))
            await pushes.start()
            try:
                await pushes._on_event(event("session.started", session_id))
                assert await deliverer.deliver_due() == 1
                uid = await stop(ctx, session_id, START + timedelta(minutes=30))
                await pushes._on_event(event("session.stopped", session_id))
                await pushes._on_event(event("cdr.created", session_id, cdr_uid=uid))
                assert await deliverer.deliver_due() == 0  # the PATCH refused, the CDR held back
                assert [m for m, _, _ in emsp.got] == ["PUT"]
                clock.at += timedelta(seconds=1)  # before the retry is due: still nothing
                assert await deliverer.deliver_due() == 0 and len(emsp.got) == 1
            finally:
                await pushes.stop()
                await deliverer.stop()
            await deliver_all(ctx, emsp, clock)
            statuses = [row.status for row in await outbox(ctx)]
        assert emsp.seen() == expected, (refuse, emsp.got)
        assert statuses.count(OutboxStatus.DEAD) == len(refuse) // 3, statuses


async def test_hostile_events_queue_nothing(database: str) -> None:
    """Events with a session id that is not a number, an unknown session or CDR, or no CDR
    uid, are ignored: nothing queued, nothing raised."""
    clock = Clock()
    async with worker_ctx(database, clock) as ctx:
        session_id = await driver_session(ctx)
        pushes = RoamingPushes(ctx)
        await pushes.start()
        try:
            for bad in (
                Event("session.started", {"session_id": str(session_id)}),
                Event("session.started", {"session_id": None}),
                Event("session.stopped", {}),
                event("session.started", 999_999),
                event("cdr.created", session_id),
                event("cdr.created", session_id, cdr_uid=12),
                event("cdr.created", session_id, cdr_uid="NO-SUCH-CDR"),
            ):
                await pushes._on_event(bad)
        finally:
            await pushes.stop()
        assert await outbox(ctx) == []


async def _empty(ctx: ServiceContext) -> None:
    """A clean database for the next case of a looped test."""
    from tests.conftest import _empty_postgres

    await _empty_postgres(ctx.settings.database_url)
