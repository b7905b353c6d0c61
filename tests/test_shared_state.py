"""No per-process truth (issue 18 points 5 and 6): two service contexts ("processes") on one
database and one real Redis. The login lock-out holds across them, a revoked token stops
working in the other at once, a helpdesk flow started in one is read (and waited for) in the
other, one flow per EVSE holds across them, and a flow whose process died reads as interrupted.

The two contexts share one InProcessBus: the fan-out bus's contract (every process sees every
event) stands in for the Redis Streams bus here; what is tested is what each process does with
the event.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from redis.asyncio import Redis

from stekker.bus import InProcessBus
from stekker.cluster.node import NodeInfo, Role
from stekker.cluster.redis_link import ClusterMessagingUnavailable, Keys, connect
from stekker.db.engine import make_engine, make_session_factory
from stekker.db.migrate import upgrade
from stekker.db.models_users import Role as UserRole
from stekker.services import users
from stekker.services.context import ServiceContext
from stekker.services.stop_release import (
    Flow,
    FlowAlreadyRunning,
    FlowBook,
    FlowStatus,
    FlowTiming,
    StepStatus,
    Target,
    flow_of_record,
    flow_record,
)
from stekker.services.users import AuthFailed, LoginThrottled
from tests.conftest import _empty_postgres, make_settings
from tests.observe import eventually
from tests.redis_server import RedisServer

KEYS = Keys("t18:")


@dataclass
class Cluster:
    a: ServiceContext
    b: ServiceContext
    redis: tuple[Redis, Redis]
    bus: InProcessBus


@pytest.fixture
async def cluster(database_url: str, redis_server: RedisServer) -> AsyncIterator[Cluster]:
    if database_url.startswith("postgresql"):
        engine = make_engine(database_url)
        await upgrade(engine)
        await engine.dispose()
        await _empty_postgres(database_url)
    settings = make_settings(
        database_url, login_free_failures=3, login_address_free_failures=50, auth_cache_seconds=600
    )
    bus = InProcessBus()
    engines = [make_engine(database_url), make_engine(database_url)]
    clients = (connect(redis_server.url), connect(redis_server.url))
    contexts = [
        ServiceContext(
            settings,
            make_session_factory(engine),
            bus,
            node=NodeInfo(name, frozenset({Role.API})),
            redis=client,
            keys=KEYS,
        )
        for name, engine, client in zip(("api-a", "api-b"), engines, clients, strict=True)
    ]
    yield Cluster(contexts[0], contexts[1], clients, bus)
    for client in clients:
        await client.aclose()
    for engine in engines:
        await engine.dispose()


# ---- login lock-out and auth caches -------------------------------------------------------------------


async def test_the_fourth_wrong_password_through_b_is_throttled_after_three_through_a(
    cluster: Cluster,
) -> None:
    await users.create_user(cluster.a, "test", "alice", "right-password-1", UserRole.ADMIN)
    for _ in range(3):
        with pytest.raises(AuthFailed):
            await users.login(cluster.a, "alice", "wrong", address="192.0.2.7")
    with pytest.raises(LoginThrottled) as refused:
        await users.login(cluster.b, "ALICE", "right-password-1", address="192.0.2.7")
    assert refused.value.retry_after >= 1
    # from another address the real user still logs in, through either process
    user, _token, secret = await users.login(cluster.b, "alice", "right-password-1", address="192.0.2.8")
    assert user.username == "alice" and secret.startswith("stk_")


async def test_a_revoked_token_stops_working_in_the_other_process_at_once(cluster: Cluster) -> None:
    for ctx in (cluster.a, cluster.b):
        users.follow_auth_changes(ctx)
    await users.create_user(cluster.a, "test", "admin", "admin-password-1", UserRole.ADMIN)
    await users.create_user(cluster.a, "test", "bob", "bob-password-1", UserRole.OPERATOR)
    token, secret = await users.create_token(cluster.a, "test", "bob", "script", None)
    assert (await users.identify(cluster.b, secret)).username == "bob"  # cached in b (600 s)
    await users.revoke_token(cluster.a, "admin", token.id)

    async def refused() -> bool:
        try:
            await users.identify(cluster.b, secret)
        except AuthFailed:
            return True
        return False

    await eventually(refused, timeout=5)
    # the same for a disabled user
    _, other = await users.create_token(cluster.a, "test", "bob", "script2", None)
    assert (await users.identify(cluster.b, other)).username == "bob"
    await users.set_active(cluster.a, "admin", "bob", False)
    await eventually(refused_for(cluster.b, other), timeout=5)


def refused_for(ctx: ServiceContext, secret: str) -> Any:
    async def check() -> bool:
        try:
            await users.identify(ctx, secret)
        except AuthFailed:
            return True
        return False

    return check


async def test_without_following_the_other_process_keeps_its_cache(cluster: Cluster) -> None:
    """What follow_auth_changes is for: without it, b believes its cache for the window."""
    await users.create_user(cluster.a, "test", "admin", "admin-password-1", UserRole.ADMIN)
    token, secret = await users.create_token(cluster.a, "test", "admin", "script", None)
    assert (await users.identify(cluster.b, secret)).username == "admin"
    await users.revoke_token(cluster.a, "admin", token.id)
    await asyncio.sleep(0.2)
    assert (await users.identify(cluster.b, secret)).username == "admin"
    with pytest.raises(AuthFailed):
        await users.identify(cluster.a, secret)  # the process that revoked knows at once


async def test_a_station_change_drops_its_verified_password_everywhere(cluster: Cluster) -> None:
    users.follow_auth_changes(cluster.b)
    cluster.b.credentials.remember("CP1", "hash-1", "secret")
    cluster.b.credentials.remember("CP2", "hash-2", "secret")
    from stekker.bus import Event

    await cluster.bus.publish(Event("station.changed", {"station_id": "CP1"}))
    await eventually(lambda: not cluster.b.credentials.known("CP1", "hash-1", "secret"), timeout=5)
    assert cluster.b.credentials.known("CP2", "hash-2", "secret")
    await users.auth_changed(cluster.a, "station")  # many at once (an import): all of them
    await eventually(lambda: len(cluster.b.credentials) == 0, timeout=5)


async def test_a_bus_that_cannot_publish_does_not_undo_a_revoke(cluster: Cluster) -> None:
    class Broken(InProcessBus):
        async def publish(self, event: Any) -> None:
            raise ClusterMessagingUnavailable("redis down")

    cluster.a.bus = Broken()
    await users.create_user(cluster.a, "test", "admin", "admin-password-1", UserRole.ADMIN)
    token, secret = await users.create_token(cluster.a, "test", "admin", "script", None)
    revoked = await users.revoke_token(cluster.a, "admin", token.id)  # no exception reaches the caller
    assert revoked.revoked_at is not None
    with pytest.raises(AuthFailed):
        await users.identify(cluster.a, secret)


# ---- helpdesk flows --------------------------------------------------------------------------------


class Puppet:
    """A flow runner the test moves step by step (the real runner needs a station)."""

    def __init__(self) -> None:
        self.go = asyncio.Event()
        self.started = asyncio.Event()

    async def __call__(self, ctx: ServiceContext, flow: Flow) -> None:
        try:
            step = flow.step("remote_stop")
            step.status, step.started_at = StepStatus.RUNNING, ctx.now()
            self.started.set()
            await self.go.wait()
            step.status, step.answer = StepStatus.OK, "Accepted"
            flow.status, flow.ended_at = FlowStatus.RELEASED, ctx.now()
        finally:
            if flow.status is FlowStatus.RUNNING:
                flow.status = FlowStatus.FAILED
            flow.done.set()


def book(ctx: ServiceContext, runner: Any = None, **options: Any) -> FlowBook:
    return FlowBook.for_context(ctx, runner=runner or Puppet(), mirror_every=0.05, **options)


TARGET = Target("CP-ÄÖ:*{x}", 1, 2, None)  # odd characters in the id end in a hashed key


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_flow_started_in_a_is_read_and_followed_in_b(cluster: Cluster) -> None:
    puppet = Puppet()
    book_a, book_b = book(cluster.a, puppet), book(cluster.b)
    flow = await book_a.launch(cluster.a, "user:helpdesk", TARGET, FlowTiming(total=60))
    seen = await book_b.find(flow.id)  # at once: launch wrote it before answering
    assert seen is not None and seen.status is FlowStatus.RUNNING and seen.target == TARGET
    await asyncio.wait_for(puppet.started.wait(), 5)

    async def running_step() -> bool:
        fresh = await book_b.find(flow.id)
        return fresh is not None and fresh.step("remote_stop").status is StepStatus.RUNNING

    await eventually(running_step, timeout=5)
    # one flow per EVSE in the whole cluster
    with pytest.raises(FlowAlreadyRunning, match=flow.id):
        await book_b.launch(cluster.b, "user:other", Target(TARGET.station_id, 1, 1, None))
    other_evse = await book_b.launch(cluster.b, "user:other", Target(TARGET.station_id, 2, 1, None))
    assert other_evse.id != flow.id
    puppet.go.set()
    ended = await book_b.follow(seen, 10)
    assert ended.status is FlowStatus.RELEASED and ended.step("remote_stop").answer == "Accepted"
    # over: the EVSE is free again, from either process
    again = await book_b.launch(cluster.b, "user:other", TARGET)
    assert again.id != flow.id
    assert await book_b.find("0" * 32) is None
    assert await book_b.find("not-a-flow-id") is None
    await book_a.close()
    await book_b.close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_flow_whose_process_died_reads_as_interrupted(cluster: Cluster) -> None:
    puppet = Puppet()
    book_a, book_b = book(cluster.a, puppet, alive_seconds=0.5), book(cluster.b)
    flow = await book_a.launch(cluster.a, "user:helpdesk", TARGET)
    await asyncio.wait_for(puppet.started.wait(), 5)
    # "kill -9" of process a: its tasks stop without a word (nothing final is written)
    for prefix in ("flow-mirror-", "stop-release-"):  # the mirror first: it must write nothing more
        tasks = [t for t in book_a._tasks if t.get_name().startswith(prefix)]
        assert tasks
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def interrupted() -> Flow | None:
        fresh = await book_b.find(flow.id)
        return fresh if fresh is not None and fresh.status is FlowStatus.FAILED else None

    seen = await eventually(interrupted, timeout=10)
    assert seen.ending is not None and seen.ending.code == "outcome_interrupted"
    assert "api-a" in (seen.outcome or "")
    assert seen.step("remote_stop").status is StepStatus.FAILED
    assert seen.step("unlock").status is StepStatus.SKIPPED
    # and the EVSE is free for a new flow (its key expired with the process)
    await eventually(lambda: _launches(book_b, cluster.b), timeout=10)


async def _launches(flows: FlowBook, ctx: ServiceContext) -> bool:
    try:
        await flows.launch(ctx, "user:helpdesk", TARGET)
    except FlowAlreadyRunning:
        return False
    return True


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_redis_stopped_gives_a_clear_error_and_the_running_flow_goes_on(
    cluster: Cluster, redis_server: RedisServer
) -> None:
    puppet = Puppet()
    book_a, book_b = book(cluster.a, puppet), book(cluster.b)
    flow = await book_a.launch(cluster.a, "user:helpdesk", TARGET)
    redis_server.stop()
    with pytest.raises(ClusterMessagingUnavailable):
        await book_b.launch(cluster.b, "user:helpdesk", Target("CP2", 1, 1, None))
    with pytest.raises(ClusterMessagingUnavailable):
        await book_b.find(flow.id)
    assert await book_a.find(flow.id) is flow  # its own process still shows it
    puppet.go.set()
    await book_a.wait(flow, 5)
    assert flow.status is FlowStatus.RELEASED
    redis_server.start()  # the final record is written when Redis is back (it restarted empty)

    async def final() -> bool:
        try:
            fresh = await book_b.find(flow.id)
        except ClusterMessagingUnavailable:
            return False
        return fresh is not None and fresh.status is FlowStatus.RELEASED

    await eventually(final, timeout=15)
    await book_a.close()


def test_a_flow_record_round_trips_and_garbage_is_refused() -> None:
    from datetime import UTC, datetime

    from stekker.services.stop_release import Note

    flow = Flow("a" * 32, "user:x", TARGET, FlowTiming(), datetime(2026, 12, 7, tzinfo=UTC))
    flow.status, flow.ending = FlowStatus.RELEASED, Note("outcome_released", {"how": Note("how_unlocked")})
    flow.step("unlock").notes = [Note("answered", {"answer": "Unlocked"})]
    back = flow_of_record(orjson.loads(orjson.dumps(flow_record(flow, "n1"))))
    assert back.outcome == flow.outcome and back.steps == flow.steps and back.done.is_set()
    for bad in ({}, {"target": "x"}, {**flow_record(flow, "n1"), "status": "dancing"}):
        with pytest.raises((KeyError, ValueError, TypeError)):
            flow_of_record(bad)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_an_unreadable_record_is_not_found_not_a_crash(cluster: Cluster) -> None:
    flows = book(cluster.b)
    await cluster.redis[0].set(KEYS("helpdesk", "flow", "b" * 32), "{not json")
    assert await flows.find("b" * 32) is None


async def test_one_process_keeps_flows_in_memory(tmp_path: Path) -> None:
    flows = FlowBook(runner=Puppet())
    assert flows._redis is None
    ctx_stub: Any = type("Ctx", (), {"now": staticmethod(lambda: __import__("datetime").datetime.now())})()
    flow = await flows.launch(ctx_stub, "user:x", TARGET)
    assert await flows.find(flow.id) is flow and flows.get(flow.id) is flow
    with pytest.raises(FlowAlreadyRunning):
        await flows.launch(ctx_stub, "user:x", TARGET)
    await flows.close()


# ---- OCPI commands whose process died -------------------------------------------------------------


async def test_a_command_whose_process_died_gets_a_timeout_result_once(cluster: Cluster) -> None:
    from datetime import timedelta

    from sqlalchemy import select

    from stekker.db.models_ocpi import OcpiOutboxItem, OcpiPartner
    from stekker.ocpi import commands as ocpi_commands
    from stekker.services.audit import record_audit

    ctx = cluster.a

    async def add_partner(db: Any) -> int:
        partner = OcpiPartner(name="emsp", incoming_token_sha256="0" * 64, created_by="test")
        db.add(partner)
        await db.flush()
        return int(partner.id)

    partner_id = await ctx.write(add_partner)
    start = ctx.now()
    for command_id in ("dead", "answered", "fresh"):
        if command_id == "fresh":
            ctx.clock = lambda: start + timedelta(seconds=200)
        await record_audit(
            ctx, actor="ocpi:emsp", action="ocpi.command.received", object_type="ocpi_partner",
            object_id=partner_id, result="accepted", command="START_SESSION", command_id=command_id,
            response_url="http://127.0.0.1:9/results/" + command_id,
        )  # fmt: skip
    ctx.clock = lambda: start

    async def answered(db: Any) -> None:  # the live process queued this one's result
        from stekker.services.ocpi_outbox import enqueue

        enqueue(db, partner_id=partner_id, kind="commands.result", key="command:answered", method="POST",
                url="http://127.0.0.1:9/results/answered", body={"result": "ACCEPTED"}, at=start)  # fmt: skip

    await ctx.write(answered)
    assert await ocpi_commands.sweep_unanswered(ctx) == 0  # nothing is past the eMSP's timeout yet
    ctx.clock = lambda: start + timedelta(seconds=ocpi_commands._timeout(ctx) + 1)
    assert await ocpi_commands.sweep_unanswered(cluster.b) == 0  # b's clock: still too early
    assert await ocpi_commands.sweep_unanswered(ctx) == 1
    assert await ocpi_commands.sweep_unanswered(ctx) == 0  # once
    async with ctx.db() as db:
        rows = (await db.execute(select(OcpiOutboxItem).order_by(OcpiOutboxItem.id))).scalars().all()
    results = {row.key: row.body["result"] for row in rows}
    assert results == {"command:answered": "ACCEPTED", "command:dead": "TIMEOUT"}
    assert [r.url for r in rows if r.key == "command:dead"] == ["http://127.0.0.1:9/results/dead"]
    assert ocpi_commands.SWEEP_LEASE == "ocpi-command-sweep"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_problem_reports_are_throttled_across_processes(cluster: Cluster) -> None:
    from stekker.domain.problem_reports import ReportThrottle
    from stekker.services.problem_reports import take_report_slot

    local_a, local_b = ReportThrottle(per_hour=6, burst=2), ReportThrottle(per_hour=6, burst=2)
    address = "2001:db8::1"
    assert await take_report_slot(cluster.a, local_a, address) == 0
    assert await take_report_slot(cluster.b, local_b, address) == 0
    assert await take_report_slot(cluster.a, local_a, address) > 500  # one each 10 minutes
    assert len(local_a) == 0 and len(local_b) == 0  # counted in Redis, not in memory
    one_process = ReportThrottle(per_hour=6, burst=1)
    cluster.b.redis = None
    assert await take_report_slot(cluster.b, one_process, address) == 0
    assert await take_report_slot(cluster.b, one_process, address) > 0 and len(one_process) == 1
