"""Issue 18 point 8: what an operator's monitoring sees on every process's HTTP port.

/health (alive), /ready (database, Redis and listeners usable: a load balancer's check) and
/metrics (Prometheus). Against a real server where the whole app is concerned; the probe app
of a process without the api role directly (httpx on the ASGI app), with an injected clock
where a test counts how often the database is asked.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from stekker.api.probes import Probes, create_probe_app
from stekker.app import Stekker
from stekker.bus import InProcessBus
from stekker.cluster.leases import LocalLeases
from stekker.cluster.node import NodeInfo, Role
from stekker.cluster.redis_link import connect
from stekker.db.engine import make_engine, make_session_factory
from stekker.services.context import ServiceContext
from tests.conftest import PG_ADMIN_URL, make_settings
from tests.observe import eventually
from tests.peers import ocpp_station, raw_station
from tests.redis_server import RedisServer
from tests.test_users_roles import make_admin

PG = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text (0 when absent)."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


async def scrape(api: httpx.AsyncClient) -> str:
    response = await api.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


class FakeClock:
    """Monotonic seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@asynccontextmanager
async def probe_app(
    database_url: str, redis_url: str | None = None, **probes_kw: Any
) -> AsyncIterator[tuple[Probes, httpx.AsyncClient]]:
    """A worker's probes (no api role): its own context, the probe app, a client on it."""
    engine = make_engine(database_url)
    redis = connect(redis_url) if redis_url else None
    ctx = ServiceContext(
        make_settings(database_url),
        make_session_factory(engine),
        InProcessBus(),
        node=NodeInfo("worker-1", frozenset({Role.WORKER})),
        redis=redis,
        leases=LocalLeases("worker-1"),
    )
    probes = Probes(ctx, **probes_kw)
    transport = httpx.ASGITransport(app=create_probe_app(probes))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://probe", timeout=30) as client:
            yield probes, client
    finally:
        await probes.close()
        if redis is not None:
            await redis.aclose()
        await engine.dispose()


# ---- the whole server ------------------------------------------------------------------------------


async def test_health_and_ready_on_a_running_server(api: httpx.AsyncClient, ocpp_url: str) -> None:
    async with raw_station(ocpp_url, "PROBE1"):
        health = (await api.get("/health")).json()
        assert health["status"] == "ok" and health["version"]
        assert health["stations_connected"] == 1  # what /health said before issue 18 stays
        assert health["node_id"] and health["roles"] == ["api", "gateway", "worker"]
    ready = await api.get("/ready")
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["status"] == "ready" and body["not_ready"] == []
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"] == "not configured"  # one process: no Redis, and ready


async def test_probes_need_no_token_and_stay_out_of_the_operator_sections(api: httpx.AsyncClient) -> None:
    await make_admin(api)  # from now on the API asks for a token...
    assert (await api.get("/api/stations")).status_code == 401
    for path in ("/health", "/ready", "/metrics"):  # ...and the probes do not
        assert (await api.get(path)).status_code == 200, path
    doc = (await api.get("/openapi.json")).json()
    for path in ("/health", "/ready", "/metrics"):
        assert doc["paths"][path]["get"]["tags"] == ["meta"], path
        assert "x-roles" not in doc["paths"][path]["get"]


@PG
async def test_ready_is_503_naming_the_database_while_it_refuses_connections(
    server: Stekker, api: httpx.AsyncClient, database_url: str
) -> None:
    name = database_url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(PG_ADMIN_URL)
    try:
        assert (await api.get("/ready")).status_code == 200
        # the database goes away for this process: its connections cut, new ones refused
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )

        async def not_ready() -> dict[str, Any] | None:
            response = await api.get("/ready")
            return response.json() if response.status_code == 503 else None

        body = await eventually(not_ready, timeout=15)
        assert body["not_ready"] == ["database"]
        assert body["checks"]["database"].startswith("down")
        assert (await api.get("/health")).status_code == 200  # alive all the same
        assert sample(await scrape(api), "stekker_database_up") == 0
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.close()

    async def ready_again() -> bool:
        return (await api.get("/ready")).status_code == 200

    await eventually(ready_again, timeout=15)


async def test_metrics_count_a_boot_in_and_out_with_its_handling_time(
    api: httpx.AsyncClient, ocpp_url: str
) -> None:
    before = await scrape(api)
    boots_in = sample(before, "stekker_ocpp_messages_total", direction="in", action="BootNotification")
    async with ocpp_station(ocpp_url, "METRIC1"):  # boots

        async def counted() -> str | None:
            text = await scrape(api)
            now = sample(text, "stekker_ocpp_messages_total", direction="in", action="BootNotification")
            return text if now >= boots_in + 1 else None

        text = await eventually(counted, timeout=10)
        assert sample(text, "stekker_stations_connected") >= 1
    assert (
        sample(
            text,
            "stekker_ocpp_messages_total",
            direction="out",
            action="BootNotification",
            message_type="CALLRESULT",
        )
        >= 1
    )
    assert sample(text, "stekker_ocpp_handling_seconds_count", action="BootNotification") >= 1
    assert sample(text, "stekker_node_info", node_id=(await api.get("/health")).json()["node_id"]) == 1
    for name in ("stekker_writer_queue_depth", "stekker_database_up", "stekker_writer_batch_size_count"):
        assert f"\n{name}" in text, name


async def test_a_station_cannot_invent_metric_labels(api: httpx.AsyncClient, ocpp_url: str) -> None:
    async with raw_station(ocpp_url, "EVIL1") as station:
        for n in range(20):
            reply = await station.call(f"Invented{n}<script>", {})
            assert reply[0] == 4  # NotImplemented, as before
        reply = await station.send_text("[2, 'not json")
        assert reply[0] == 4

        async def counted() -> str | None:
            text = await scrape(api)
            others = sample(
                text, "stekker_ocpp_messages_total", direction="in", action="other", message_type="CALL"
            )
            return text if others >= 20 else None

        text = await eventually(counted, timeout=10)
    assert "Invented" not in text and "<script>" not in text
    assert sample(text, "stekker_ocpp_messages_total", direction="in", message_type="unreadable") >= 1


async def test_metrics_ignore_odd_query_strings(api: httpx.AsyncClient) -> None:
    for query in ("name[]=stekker_node_info", "%00=%ff", "a=" + "x" * 4000, "format=openmetrics&&&=="):
        response = await api.get(f"/metrics?{query}")
        assert response.status_code == 200, query
        assert response.headers["content-type"].startswith("text/plain")
        assert "stekker_ocpp_messages_total" in response.text


# ---- the probe app of a process without the api role -------------------------------------------------


@SQLITE
async def test_a_flood_of_ready_checks_asks_the_database_once_a_second(database_url: str) -> None:
    clock = FakeClock()
    async with probe_app(database_url, clock=clock) as (probes, client):
        answers = await asyncio.gather(*(client.get("/ready") for _ in range(300)))
        assert {a.status_code for a in answers} == {200}
        assert probes.dependency_checks == 1  # 300 requests, one SELECT 1
        clock.now += 0.5
        await client.get("/ready")
        assert probes.dependency_checks == 1
        clock.now += 0.6  # the answer is older than a second now
        await client.get("/ready")
        assert probes.dependency_checks == 2
        # /metrics too: a flood gets the same text, refreshed at most once a second
        texts = await asyncio.gather(*(client.get("/metrics") for _ in range(50)))
        assert len({t.text for t in texts}) == 1
        assert probes.dependency_checks == 2


@SQLITE
async def test_ready_follows_the_listeners_and_the_shutdown(database_url: str) -> None:
    listening = {"ocpp": True}

    def ocpp() -> str | None:
        return None if listening["ocpp"] else "not listening"

    def broken() -> str | None:
        raise RuntimeError("a bug in a check")

    with pytest.raises(ValueError, match="not dependencies"):
        Probes(None, critical=("disk",))  # type: ignore[arg-type]
    async with probe_app(database_url, ready_checks={"ocpp": ocpp}) as (probes, client):
        assert (await client.get("/ready")).status_code == 200
        listening["ocpp"] = False
        response = await client.get("/ready")
        assert response.status_code == 503
        assert response.json()["not_ready"] == ["ocpp"]
        assert response.json()["checks"]["ocpp"] == "not listening"
        listening["ocpp"] = True
        probes.ready_checks["other"] = broken
        response = await client.get("/ready")
        assert response.status_code == 503 and response.json()["not_ready"] == ["other"]
        del probes.ready_checks["other"]
        probes.stopping()
        response = await client.get("/ready")
        assert response.status_code == 503 and response.json()["checks"]["process"] == "stopping"
        health = (await client.get("/health")).json()
        assert health["node_id"] == "worker-1" and health["roles"] == ["worker"]
        assert health["stations_connected"] == 0
        assert (await client.get("/docs")).status_code == 404  # the probes and nothing else
        assert (await client.get("/api/stations")).status_code == 404


@SQLITE
async def test_ready_is_503_while_redis_is_down_and_200_when_it_is_back(
    database_url: str, redis_server: RedisServer
) -> None:
    clock = FakeClock()
    async with probe_app(database_url, redis_server.url, clock=clock) as (probes, client):
        ready = await client.get("/ready")
        assert ready.status_code == 200 and ready.json()["checks"]["redis"] == "ok"
        assert sample((await client.get("/metrics")).text, "stekker_redis_up") == 1
        redis_server.stop()
        clock.now += 2
        ready = await client.get("/ready")
        assert ready.status_code == 503, ready.text
        assert ready.json()["not_ready"] == ["redis"]
        assert ready.json()["checks"]["database"] == "ok"
        # a gateway behind HAProxy keeps its stations through a Redis outage: Redis not critical
        probes.critical = frozenset({"database"})
        ready = await client.get("/ready")
        assert ready.status_code == 200, ready.text
        assert ready.json()["degraded"] == ["redis"] and ready.json()["checks"]["redis"].startswith("down")
        probes.critical = frozenset({"database", "redis"})
        clock.now += 2
        assert sample((await client.get("/metrics")).text, "stekker_redis_up") == 0
        redis_server.start()
        clock.now += 2

        async def back() -> bool:
            clock.now += 2
            return (await client.get("/ready")).status_code == 200

        await eventually(back, timeout=15)


@SQLITE
async def test_metrics_refresh_gauges_and_survive_a_failing_refresher(database_url: str) -> None:
    clock = FakeClock()
    calls: list[str] = []

    async def lag() -> None:
        calls.append("lag")

    async def broken() -> None:
        raise RuntimeError("redis went away")

    async def slow() -> None:
        await asyncio.sleep(30)

    async with probe_app(
        database_url, clock=clock, stations_connected=lambda: 7, refreshers=[lag, broken, slow], timeout=0.2
    ) as (probes, client):
        await probes.ctx.leases.try_take("cdr-sweep", 10)
        text = (await client.get("/metrics")).text
        assert calls == ["lag"]
        assert sample(text, "stekker_stations_connected") == 7
        assert sample(text, "stekker_leases_held", lease="cdr-sweep") == 1
        assert sample(text, "stekker_database_up") == 1
        await probes.ctx.leases.release("cdr-sweep")
        clock.now += 2
        text = (await client.get("/metrics")).text
        assert sample(text, "stekker_leases_held", lease="cdr-sweep") == 0  # let go: 0, not stale
        assert calls == ["lag", "lag"]

        # each bulk job has a lease of its own; the gauge counts them under one label
        for job in ("job:17", "job:18", "job:19"):
            await probes.ctx.leases.try_take(job, 10)
        clock.now += 2
        text = (await client.get("/metrics")).text
        assert sample(text, "stekker_leases_held", lease="job") == 3
        assert 'lease="job:17"' not in text


@SQLITE
async def test_outbox_backlog_per_partner(server: Stekker, api: httpx.AsyncClient) -> None:
    from stekker.db.models_ocpi import OcpiOutboxItem, OcpiPartner

    async def add(db: Any) -> None:
        partner = OcpiPartner(name="P1", incoming_token_sha256="a" * 64, created_by="test")
        db.add(partner)
        await db.flush()
        for n in range(3):
            db.add(
                OcpiOutboxItem(partner_id=partner.id, kind="sessions", key=f"s:{n}", method="PUT", url="x")
            )
        db.add(
            OcpiOutboxItem(
                partner_id=partner.id, kind="sessions", key="done", method="PUT", url="x", status="delivered"
            )
        )

    await server.ctx.write(add)

    async def counted() -> bool:
        return sample(await scrape(api), "stekker_outbox_backlog", partner="1") == 3

    # the backlog is counted at most every 10 s: a freshly started server counts at its first scrape
    await eventually(counted, timeout=15)
