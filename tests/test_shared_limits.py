"""Limits that hold cluster-wide (issue 18 point 6): two "processes" (two throttles, two
buckets, two middlewares) on one real Redis share their counts; with Redis stopped each falls
back to its own memory and no exception reaches the caller; hostile keys keep one key shape."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from stekker.cluster.limits import SharedBuckets, SharedLoginThrottle, buckets_for, login_throttle_for
from stekker.cluster.redis_link import Keys, connect
from stekker.domain.login_throttle import LoginThrottle
from stekker.domain.problem_reports import ReportThrottle
from stekker.opendata.ratelimit import RateLimit, TokenBuckets
from tests.observe import eventually
from tests.redis_server import RedisServer

T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
KEYS = Keys("test:")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
async def clients(redis_server: RedisServer) -> AsyncIterator[tuple[Redis, Redis]]:
    """Two clients, as two processes would have."""
    a, b = connect(redis_server.url), connect(redis_server.url)
    yield a, b
    await a.aclose()
    await b.aclose()


def throttles(a: Redis, b: Redis, kind: str = "login") -> tuple[SharedLoginThrottle, SharedLoginThrottle]:
    params: dict[str, Any] = {"free_failures": 3, "address_free_failures": 20}
    return login_throttle_for(a, KEYS, kind, **params), login_throttle_for(b, KEYS, kind, **params)


# ---- login lock-out ---------------------------------------------------------------------------


async def test_the_fourth_wrong_password_through_b_waits_after_three_through_a(
    clients: tuple[Redis, Redis],
) -> None:
    a, b = throttles(*clients)
    for _ in range(3):
        assert await a.admit("Admin", "10.0.0.1", T0) is None
    assert await b.retry_after("admin", "10.0.0.1", T0) == 1
    assert await b.admit("ADMIN ", "10.0.0.1", at(0.5)) == 1  # refused, not counted
    assert await b.admit("admin", "10.0.0.1", at(1)) is None  # the 4th failure
    assert await a.admit("admin", "10.0.0.1", at(2)) == 1  # now 2 s from the 4th
    # nobody else is slowed
    assert await b.admit("admin", "10.0.0.2", at(2)) is None
    assert await a.admit("bob", "10.0.0.1", at(2)) is None
    # the right password in one process clears the pair for the other
    await a.succeeded("admin", "10.0.0.1")
    assert await b.retry_after("admin", "10.0.0.1", at(2)) is None
    # kinds do not share counts: stations guessing is another throttle
    station_a, _ = throttles(*clients, kind="station")
    assert await station_a.retry_after("admin", "10.0.0.1", at(2)) is None


async def test_an_address_is_slowed_across_names_and_processes(clients: tuple[Redis, Redis]) -> None:
    params: dict[str, Any] = {"free_failures": 3, "address_free_failures": 5}
    a = login_throttle_for(clients[0], KEYS, "login", **params)
    b = login_throttle_for(clients[1], KEYS, "login", **params)
    for n in range(5):
        assert await (a if n % 2 else b).admit(f"user{n}", "10.0.0.9", T0) is None
    assert await a.admit("user99", "10.0.0.9", T0) == 1
    assert await b.admit("user99", "10.0.0.8", T0) is None
    assert await b.admit("mine", "10.0.0.9", at(1)) is None
    await a.succeeded("mine", "10.0.0.9")  # only that attempt is taken back
    assert await b.retry_after("user99", "10.0.0.9", at(1)) == 1


async def test_records_are_forgotten_after_forget_after(clients: tuple[Redis, Redis]) -> None:
    a = login_throttle_for(clients[0], KEYS, "login", free_failures=1, max_delay=timedelta(seconds=60))
    assert await a.admit("a", "10.0.0.1", T0) is None
    assert await a.retry_after("a", "10.0.0.1", T0) == 1
    # Redis forgets the keys by itself: their time to live is forget_after
    ttls = [await clients[0].pttl(k) for k in await clients[0].keys("test:limit:login:*")]
    assert len(ttls) == 2 and all(0 < t <= 120_000 for t in ttls)
    assert await a.retry_after("a", "10.0.0.1", at(120)) is None  # 2 x max_delay later
    assert await clients[0].keys("test:limit:login:*") == []


async def test_redis_gives_the_same_answers_as_the_in_memory_rule(clients: tuple[Redis, Redis]) -> None:
    """A random sequence of attempts, successes and waits: the shared throttle answers as the
    domain's LoginThrottle does."""
    rng = random.Random(18)
    params: dict[str, Any] = {
        "free_failures": 2,
        "address_free_failures": 4,
        "max_delay": timedelta(seconds=30),
    }
    memory = LoginThrottle(**params)
    shared = login_throttle_for(clients[0], KEYS, "parity", **params)
    t = 0.0
    for _ in range(400):
        name, address = rng.choice(["ann", "bob", "Cy"]), rng.choice(["10.0.0.1", "10.0.0.2", "::1"])
        t += rng.choice([0, 0.3, 1, 2.5, 7, 70])
        action = rng.random()
        if action < 0.6:
            assert await shared.admit(name, address, at(t)) == memory.admit(name, address, at(t)), t
        elif action < 0.8:
            assert await shared.retry_after(name, address, at(t)) == memory.retry_after(name, address, at(t))
        else:
            await shared.succeeded(name, address)
            memory.succeeded(name, address)


async def test_hostile_names_and_addresses_make_keys_of_one_shape(clients: tuple[Redis, Redis]) -> None:
    a, b = throttles(*clients)
    odd = ["x" * 100_000, "a:b:*?[]{}\r\n\x00 ", "ünïcødé\ud800", "2001:db8::ff00:42:8329", ""]
    for name in odd:
        for address in odd:
            assert await a.admit(name, address, T0) is None
    keys = await clients[0].keys("test:limit:login:*")
    assert keys and all(len(k) == len("test:limit:login:") + 33 for k in keys)
    assert all(set(k.rsplit(":", 1)[1][1:]) <= set("0123456789abcdef") for k in keys)
    # a very long name counts as its first 64 characters, in both processes
    for _ in range(2):
        assert await b.admit("y" * 64 + "tail", "10.1.1.1", T0) is None
    assert await a.admit("Y" * 64 + "other", "10.1.1.1", T0) is None
    assert await b.admit("y" * 64, "10.1.1.1", T0) == 1


async def test_redis_stopped_fails_open_to_this_process_memory(
    redis_server: RedisServer, clients: tuple[Redis, Redis]
) -> None:
    a, b = throttles(*clients)
    assert await a.admit("admin", "10.0.0.1", T0) is None
    a.breaker.pause = b.breaker.pause = 0  # ask Redis at every call (each fails fast, refused)
    redis_server.stop()
    # no exception reaches the caller; each process now counts on its own (fail open, not closed)
    for _ in range(3):
        assert await a.admit("admin", "10.0.0.1", T0) is None
    assert await a.admit("admin", "10.0.0.1", T0) == 1  # still some protection in this process
    assert await b.admit("admin", "10.0.0.1", T0) is None  # the other process's own count
    await a.succeeded("admin", "10.0.0.1")
    assert a.breaker.down
    redis_server.start()

    async def answered() -> bool:
        return (await a._ask("probe", "10.9.9.9", T0, count=False))[0]

    await eventually(answered)
    assert not a.breaker.down
    # counted cluster-wide again (this Redis restarted empty: a new count)
    for _ in range(3):
        assert await a.admit("eve", "10.0.0.5", at(1)) is None
    assert await b.admit("eve", "10.0.0.5", at(1)) == 1


async def test_one_process_without_redis_is_todays_throttle() -> None:
    throttle = login_throttle_for(None, KEYS, "login", free_failures=1)
    assert not throttle.shared
    assert await throttle.admit("a", "10.0.0.1", T0) is None
    assert await throttle.admit("a", "10.0.0.1", T0) == 1
    assert throttle.rule._pairs  # the counts are in memory


# ---- token buckets ----------------------------------------------------------------------------


def shared_buckets(redis: Redis, now: list[float], kind: str = "opendata") -> SharedBuckets:
    local = TokenBuckets(per_minute=6, burst=3, clock=lambda: now[0])
    return SharedBuckets(redis, KEYS, kind, rate=6 / 60, burst=3, local=local.take, clock=lambda: now[0])


async def test_a_bucket_is_shared_by_two_processes(clients: tuple[Redis, Redis]) -> None:
    now = [1_000_000.0]
    a, b = shared_buckets(clients[0], now), shared_buckets(clients[1], now)
    assert [await a.take("10.0.0.1"), await b.take("10.0.0.1"), await a.take("10.0.0.1")] == [0, 0, 0]
    assert await b.take("10.0.0.1") == pytest.approx(10.0)  # 6 a minute: one each 10 s
    assert await a.take("10.0.0.2") == 0  # each client its own bucket
    now[0] += 10
    assert await b.take("10.0.0.1") == 0
    assert await a.take("10.0.0.1") == pytest.approx(10.0)  # the refused take cost nothing
    now[0] += 1000
    assert [await b.take("10.0.0.1") for _ in range(4)][:3] == [0, 0, 0]  # never above burst
    # a clock behind the last writer's (another machine) refills nothing and breaks nothing
    now[0] -= 500
    assert await a.take("10.0.0.1") > 0


async def test_ipv6_and_hostile_clients_make_keys_of_one_shape(clients: tuple[Redis, Redis]) -> None:
    now = [1_000_000.0]
    a = shared_buckets(clients[0], now)
    for client in ("2001:db8::1", "::ffff:10.0.0.1", "x" * 50_000, "*:{}\n", "unknown"):
        assert await a.take(client) == 0
    keys = await clients[0].keys("test:limit:opendata:*")
    assert len(keys) == 5 and all(len(k) == len("test:limit:opendata:") + 32 for k in keys)
    ttls = [await clients[0].pttl(k) for k in keys]
    assert all(0 < t <= 31_000 for t in ttls)  # gone once full again


async def test_buckets_with_redis_stopped_count_locally(
    redis_server: RedisServer, clients: tuple[Redis, Redis]
) -> None:
    now = [1_000_000.0]
    a = shared_buckets(clients[0], now)
    assert await a.take("10.0.0.1") == 0
    redis_server.stop()
    assert [await a.take("10.0.0.1") for _ in range(3)] == [0, 0, 0]  # the local bucket, full
    assert await a.take("10.0.0.1") > 0
    assert a.breaker.down


async def test_the_problem_report_throttle_is_shared(clients: tuple[Redis, Redis]) -> None:
    now = [1_000_000.0]

    def limiter(redis: Redis) -> Any:
        local = ReportThrottle(per_hour=6, burst=2, clock=lambda: now[0])
        return buckets_for(
            redis, KEYS, "report", rate=6 / 3600, burst=2, local=local.take, clock=lambda: now[0]
        )

    a, b = limiter(clients[0]), limiter(clients[1])
    assert await a.take("10.0.0.1") == 0 and await b.take("10.0.0.1") == 0
    assert await a.take("10.0.0.1") == pytest.approx(600.0)
    one_process = buckets_for(None, KEYS, "report", rate=1, burst=1, local=lambda _k: 42.0)
    assert await one_process.take("x") == 42.0


# ---- the open-data middleware -------------------------------------------------------------------


async def _ok_app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def middleware(redis: Redis | None, now: list[float]) -> RateLimit:
    buckets = TokenBuckets.shared(redis, KEYS, per_minute=6, burst=3, clock=lambda: now[0])
    return RateLimit(_ok_app, buckets=buckets)


async def test_two_api_processes_share_the_open_data_rate_limit(clients: tuple[Redis, Redis]) -> None:
    now = [1_000_000.0]
    first, second = middleware(clients[0], now), middleware(clients[1], now)
    transports = [httpx.ASGITransport(app=m, client=("2001:db8::7", 1234)) for m in (first, second)]
    answers = []
    for n in range(4):
        async with httpx.AsyncClient(transport=transports[n % 2], base_url="http://t") as client:
            answers.append(await client.get("/opendata/geojson"))
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert answers[3].headers["retry-after"] == "10"
    assert "6 requests a minute" in answers[3].json()["detail"]
    async with httpx.AsyncClient(transport=transports[0], base_url="http://t") as client:
        assert (await client.get("/api/stations")).status_code == 200  # not open data: not limited
