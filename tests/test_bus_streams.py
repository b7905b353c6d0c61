"""The cluster's event bus on a Redis stream: fan-out to every process, consumer groups that
handle each event once, takeover from a dead member, retries and poison events, and events kept
in PostgreSQL while Redis is away. Real redis-server per test, real PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from stekker.bus import Event, InProcessBus
from stekker.bus import streams as streams_module
from stekker.bus.codec import MalformedEntry, decode_entry, encode_data
from stekker.bus.streams import StreamBus
from stekker.cluster.redis_link import Keys, connect
from tests.conftest import _empty_postgres
from tests.redis_server import RedisServer


async def until(check: Callable[[], bool | Awaitable[bool]], what: str, timeout: float = 20.0) -> None:
    """Poll until `check` holds; fail (not hang) after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for: {what}")
        await asyncio.sleep(0.02)


@pytest.fixture
def keys() -> Keys:
    return Keys(f"t{uuid.uuid4().hex[:6]}:")


@pytest.fixture
async def buses(redis_server: RedisServer, keys: Keys) -> AsyncIterator[Callable[..., StreamBus]]:
    """Make StreamBus instances ("processes") on the test's Redis; all stopped at the end."""
    made: list[StreamBus] = []

    def make(node: str, db: async_sessionmaker[AsyncSession] | None = None, **kwargs: Any) -> StreamBus:
        kwargs.setdefault("groups", ())
        bus = StreamBus(redis_server.url, keys, node, db, **kwargs)
        made.append(bus)
        return bus

    yield make
    for bus in made:
        if bus._started:
            await bus.stop()


@pytest.fixture(params=["postgresql", "memory"])
def backlog_url(request: pytest.FixtureRequest) -> str | None:
    """Where a publisher keeps events while Redis is away: PostgreSQL, or memory (no database)."""
    return str(request.getfixturevalue("pg_database")) if request.param == "postgresql" else None


@pytest.fixture
async def backlog_db(backlog_url: str | None) -> AsyncIterator[async_sessionmaker[AsyncSession] | None]:
    if backlog_url is None:
        yield None
        return
    from stekker.db.engine import make_engine, make_session_factory
    from stekker.db.migrate import upgrade

    engine = make_engine(backlog_url)
    await upgrade(engine)
    await _empty_postgres(backlog_url)
    yield make_session_factory(engine)
    await engine.dispose()


def numbered(topic: str, n: int) -> Event:
    return Event(topic, {"n": n})


# ---- encoding ---------------------------------------------------------------------------------


def test_event_data_round_trip_rules() -> None:
    at = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    data: dict[Any, Any] = {
        "nested": {"list": [1, "two", None, {"deep": True}], "float": 1.5},
        "int": 12345678901234,
        "none": None,
        "text": "Zoë ⚡",
        "money": Decimal("12.50"),
        "when": at,
        "set": {3, 1, 2},
        7: "int key",
    }
    fields = {"topic": "t.x", "data": encode_data(data), "at": at.isoformat(), "node": "n1"}
    entry = decode_entry(fields)
    assert entry.event.topic == "t.x"
    assert entry.event.at == at
    assert entry.node == "n1" and entry.fanned == ""
    assert entry.event.data == {
        "nested": {"list": [1, "two", None, {"deep": True}], "float": 1.5},
        "int": 12345678901234,
        "none": None,
        "text": "Zoë ⚡",
        "money": "12.50",  # exact, as text (money is Decimal; JSON numbers are floats)
        "when": "2026-03-01T12:30:00Z",
        "set": [1, 2, 3],
        "7": "int key",
    }
    # something JSON cannot say at all still publishes, as its text
    assert decode_entry({**fields, "data": encode_data({"x": object})}).event.data["x"].startswith("<class")


@pytest.mark.parametrize(
    "fields",
    [
        None,
        {},
        {"topic": "a.b"},
        {"topic": "", "data": "{}", "at": "2026-01-01T00:00:00+00:00"},
        {"topic": "a.b", "data": "{not json", "at": "2026-01-01T00:00:00+00:00"},
        {"topic": "a.b", "data": "[1, 2]", "at": "2026-01-01T00:00:00+00:00"},
        {"topic": "a.b", "data": "{}", "at": "yesterday"},
        {"topic": "a.b", "data": "{}", "at": "2026-01-01T00:00:00"},  # no offset
        {"topic": "x" * 500, "data": "{}", "at": "2026-01-01T00:00:00+00:00"},
    ],
)
def test_garbled_entries_are_refused(fields: Any) -> None:
    with pytest.raises(MalformedEntry):
        decode_entry(fields)


async def test_data_round_trips_through_redis(buses: Callable[..., StreamBus]) -> None:
    a, b = buses("a"), buses("b")
    got: list[Event] = []

    async def collect(event: Event) -> None:
        got.append(event)

    b.subscribe("cdr.", collect)
    await a.start()
    await b.start()
    sent = Event("cdr.created", {"total": Decimal("1.10"), "lines": [{"wh": 1200, "note": None}], "ok": True})
    await a.publish(sent)
    await until(lambda: len(got) == 1, "the event in the other process")
    assert got[0].topic == "cdr.created"
    assert got[0].at == sent.at
    assert got[0].data == {"total": "1.10", "lines": [{"wh": 1200, "note": None}], "ok": True}


# ---- fan-out and groups across two processes -------------------------------------------------------


async def test_fanout_everywhere_and_each_group_event_once(buses: Callable[..., StreamBus]) -> None:
    a, b = buses("node-a"), buses("node-b")
    seen: dict[str, list[int]] = {"a": [], "b": []}
    handled: Counter[int] = Counter()
    handled_by: Counter[str] = Counter()
    wrong_topic: list[str] = []

    def fan(name: str) -> Callable[[Event], Awaitable[None]]:
        async def handler(event: Event) -> None:
            seen[name].append(event.data["n"])

        return handler

    def member(name: str) -> Callable[[Event], Awaitable[None]]:
        async def handler(event: Event) -> None:
            if not event.topic.startswith("session."):
                wrong_topic.append(event.topic)
            handled[event.data["n"]] += 1
            handled_by[name] += 1

        return handler

    a.subscribe("", fan("a"))
    b.subscribe("", fan("b"))
    a.subscribe("session.", member("a"), group="g")
    b.subscribe("session.", member("b"), group="g")
    await a.start()
    await b.start()

    for n in range(200):
        await (a if n % 2 else b).publish(numbered("session.stopped", n))
    for n in range(200, 220):  # not for the group: acknowledged at once, never handled
        await a.publish(numbered("station.status", n))

    await until(lambda: len(seen["a"]) == 220 and len(seen["b"]) == 220, "fan-out in both processes")
    await until(lambda: sum(handled.values()) >= 200, "the group handled 200 events")
    await until(lambda: _pending_zero(a, "g"), "nothing pending in the group")
    assert sorted(seen["a"]) == sorted(seen["b"]) == list(range(220))
    assert seen["a"] == list(range(220))  # one stream: the same order everywhere
    assert sorted(handled) == list(range(200))
    assert set(handled.values()) == {1}, "an event handled twice"
    assert wrong_topic == []
    assert await a.lag() == {"g": 0}
    # both members took part (each XREADGROUP batch goes to whoever asks first)
    assert handled_by["a"] + handled_by["b"] == 200


async def _pending_zero(bus: StreamBus, group: str) -> bool:
    return (await bus.pending()).get(group, -1) == 0


async def test_a_dead_members_entries_go_to_another(buses: Callable[..., StreamBus]) -> None:
    publisher = buses("p", groups=("g",))
    await publisher.start()  # creates the group at the end of the stream
    for n in range(10):
        await publisher.publish(numbered("job.created", n))

    calls_a: list[int] = []

    async def hangs(event: Event) -> None:
        calls_a.append(event.data["n"])
        await asyncio.Event().wait()  # a process that will be killed mid-handler

    a = buses("a", claim_idle=0.3)
    a.subscribe("job.", hangs, group="g")
    await a.start()
    await until(lambda: len(calls_a) == 1, "member a took the first entry")
    await until(lambda: _pending_is(publisher, "g", 10), "member a holds all ten")
    await a.stop()  # killed: its handler cancelled, nothing acknowledged
    assert await publisher.pending() == {"g": 10}

    handled: list[int] = []

    async def works(event: Event) -> None:
        handled.append(event.data["n"])

    b = buses("b", claim_idle=0.3)
    b.subscribe("job.", works, group="g")
    await b.start()
    await until(lambda: sorted(handled) == list(range(10)), "member b took over a's entries")
    await until(lambda: _pending_zero(publisher, "g"), "all acknowledged")
    assert calls_a == [0]


async def _pending_is(bus: StreamBus, group: str, n: int) -> bool:
    return (await bus.pending()).get(group) == n


async def test_failed_handler_retried_and_poison_given_up(
    buses: Callable[..., StreamBus], caplog: pytest.LogCaptureFixture
) -> None:
    bus = buses("w", claim_idle=0.15, max_deliveries=3)
    calls: Counter[str] = Counter()
    done: list[str] = []

    async def handler(event: Event) -> None:
        kind = event.data["kind"]
        calls[kind] += 1
        if kind == "poison" or (kind == "flaky" and calls[kind] == 1):
            raise RuntimeError(f"{kind} fails")
        done.append(kind)

    bus.subscribe("x.", handler, group="g")
    await bus.start()
    for kind in ("flaky", "poison", "good"):
        await bus.publish(Event("x.y", {"kind": kind}))
    await until(lambda: sorted(done) == ["flaky", "good"], "the flaky event handled on its second try")
    with caplog.at_level(logging.ERROR, logger="stekker.bus.streams"):
        await until(lambda: "GIVES UP" in caplog.text, "the poison event given up")
    await until(lambda: _pending_zero(bus, "g"), "nothing pending")
    assert calls["flaky"] == 2
    assert calls["poison"] == 3  # max_deliveries, then acknowledged without a fourth run
    assert calls["good"] == 1
    assert "poison" in caplog.text


async def test_hostile_entries_are_skipped_and_acknowledged(
    buses: Callable[..., StreamBus], redis_server: RedisServer, keys: Keys
) -> None:
    bus = buses("w")
    fanned: list[Event] = []
    handled: list[Event] = []

    async def fan(event: Event) -> None:
        fanned.append(event)

    async def member(event: Event) -> None:
        handled.append(event)

    bus.subscribe("", fan)
    bus.subscribe("", member, group="g")
    await bus.start()
    raw = connect(redis_server.url)
    try:
        for fields in (
            {"something": "else"},
            {"topic": "a.b", "data": "{garbage", "at": "2026-01-01T00:00:00+00:00"},
            {"topic": "a.b", "data": '"a string"', "at": "2026-01-01T00:00:00+00:00"},
            {"topic": "a.b", "data": "{}", "at": "not a time"},
        ):
            await raw.xadd(keys.events, fields)  # type: ignore[arg-type]
    finally:
        await raw.aclose()
    await bus.publish(Event("a.good", {"ok": 1}))
    await until(lambda: len(handled) == 1 and len(fanned) == 1, "the good event after the garbage")
    await until(lambda: _pending_zero(bus, "g"), "the garbage acknowledged")
    assert handled[0].topic == fanned[0].topic == "a.good"
    assert not any(t.done() for t in bus._group_tasks.values()), "a reader died"
    assert bus._fanout_task is not None and not bus._fanout_task.done()


# ---- Redis away ----------------------------------------------------------------------------------------


async def test_events_published_while_redis_is_down_are_delivered_after(
    buses: Callable[..., StreamBus],
    redis_server: RedisServer,
    backlog_db: async_sessionmaker[AsyncSession] | None,
) -> None:
    db = backlog_db
    publisher = buses("p", db, groups=("g",))
    worker = buses("w", claim_idle=0.5)
    at_publisher: list[int] = []
    at_worker_fanout: list[int] = []
    handled: list[int] = []

    async def fan_p(event: Event) -> None:
        at_publisher.append(event.data["n"])

    async def fan_w(event: Event) -> None:
        at_worker_fanout.append(event.data["n"])

    async def member(event: Event) -> None:
        handled.append(event.data["n"])

    publisher.subscribe("", fan_p)
    worker.subscribe("", fan_w)
    worker.subscribe("session.", member, group="g")
    await publisher.start()
    await worker.start()
    await publisher.publish(numbered("session.stopped", -1))  # before the outage
    await until(lambda: handled == [-1], "the first event")

    redis_server.stop()
    for n in range(50):
        # never raises, never hangs a station's frame for long (bounded here so a hang fails)
        await asyncio.wait_for(publisher.publish(numbered("session.stopped", n)), 10)
    assert await publisher.backlog_size() == 50
    if db is not None:
        assert publisher._backlog.in_memory == 0, "kept in PostgreSQL, not in memory"
    # this process's own listeners did not wait for Redis
    await until(lambda: at_publisher == [-1, *range(50)], "the publisher's own fan-out")

    redis_server.start()  # empty: the stream and its groups are gone
    await until(lambda: len(handled) >= 51, "the group got the kept events", timeout=30)
    await until(lambda: _no_backlog(publisher), "the backlog sent")
    await publisher.publish(numbered("session.stopped", 50))  # straight to the stream again
    await until(lambda: handled[-1:] == [50] and at_publisher[-1:] == [50], "a new event after the outage")
    await until(lambda: at_worker_fanout[-1:] == [50], "the worker's fan-out")
    assert handled == [-1, *range(51)], "in order, each once"
    assert at_publisher == [-1, *range(51)], "the publisher's listeners saw the kept events once"
    assert at_worker_fanout == [-1, *range(51)]
    assert await publisher.backlog_size() == 0


async def _no_backlog(bus: StreamBus) -> bool:
    return await bus.backlog_size() == 0


async def test_lag_pending_and_the_metrics(buses: Callable[..., StreamBus]) -> None:
    bus = buses("m", groups=("idle",))
    await bus.start()
    for n in range(5):
        await bus.publish(numbered("x.y", n))
    assert await bus.lag() == {"idle": 5}
    assert await bus.pending() == {"idle": 0}
    await bus.refresh_metrics()
    assert REGISTRY.get_sample_value("stekker_stream_consumer_lag", {"group": "idle"}) == 5
    assert REGISTRY.get_sample_value("stekker_stream_pending", {"group": "idle"}) == 0
    assert REGISTRY.get_sample_value("stekker_event_backlog") == 0


async def test_trim_keeps_what_a_group_has_not_acknowledged(
    buses: Callable[..., StreamBus], monkeypatch: pytest.MonkeyPatch
) -> None:
    bus = buses("t", claim_idle=60)
    handled: list[int] = []

    async def member(event: Event) -> None:
        if event.data["n"] >= 150:
            raise RuntimeError("not yet")
        handled.append(event.data["n"])

    bus.subscribe("", member, group="g")
    await bus.start()
    for n in range(300):
        await bus.publish(numbered("x.y", n))
    await until(lambda: _pending_is(bus, "g", 150), "150 acknowledged, 150 pending")
    monkeypatch.setattr(streams_module, "FANOUT_KEEP_MS", 0)
    await bus.trim(approximate=False)
    first: Any = await bus._redis.xrange(bus.stream, count=1)
    assert await bus._redis.xlen(bus.stream) == 150
    assert decode_entry(first[0][1]).event.data == {"n": 150}


async def test_in_process_bus_has_the_same_life_cycle() -> None:
    bus = InProcessBus()
    got: list[Event] = []

    async def collect(event: Event) -> None:
        got.append(event)

    bus.subscribe("a.", collect, group="g")
    await bus.start()
    await bus.publish(Event("a.b", {}))
    await until(lambda: len(got) == 1, "delivered")
    await bus.refresh_metrics()
    await bus.stop()


async def test_a_redis_that_does_not_answer_does_not_hold_up_publish(
    buses: Callable[..., StreamBus], redis_server: RedisServer
) -> None:
    """A hung Redis (stopped process: connections open, no answers) is not a refused one: the
    publish gives up after its bound, keeps the event, and the relay sends it when Redis wakes."""
    import signal

    publisher = buses("p", groups=("g",))
    worker = buses("w")
    handled: list[int] = []

    async def member(event: Event) -> None:
        handled.append(event.data["n"])

    worker.subscribe("", member, group="g")
    await publisher.start()
    await worker.start()
    await publisher.publish(numbered("x.y", 0))
    await until(lambda: handled == [0], "the first event")
    assert redis_server.process is not None
    redis_server.process.send_signal(signal.SIGSTOP)
    try:
        for n in (1, 2, 3):
            await asyncio.wait_for(publisher.publish(numbered("x.y", n)), 10)
        assert publisher._backlog.in_memory == 3
    finally:
        redis_server.process.send_signal(signal.SIGCONT)
    await until(lambda: handled[-3:] == [1, 2, 3], "the kept events after Redis woke", timeout=30)
    await until(lambda: _no_backlog(publisher), "the backlog sent")
    # the publish that timed out was in Redis's socket buffer and ran when it woke: at least once
    assert handled in ([0, 1, 2, 3], [0, 1, 1, 2, 3])


def test_every_group_in_the_code_is_durable() -> None:
    """A group the code subscribes but DURABLE_GROUPS forgets would be created only when its first
    worker starts: the events a gateway published before that would never reach it."""
    import re
    from pathlib import Path

    import stekker

    named = set()
    for path in Path(stekker.__file__).parent.rglob("*.py"):
        text = path.read_text()
        if "subscribe(" not in text:
            continue
        named |= set(re.findall(r"""\bgroup=["']([^"']+)["']""", text))
        named |= set(re.findall(r"""^\s+GROUP = ["']([^"']+)["']""", text, re.MULTILINE))
    assert named, "no group found: the search is broken"
    assert named <= set(streams_module.DURABLE_GROUPS)
