"""Issue 18: `GET /api/cluster` and `stekker cluster status`: the nodes of an installation with
their roles, heartbeats, stations and leases, and the health of Redis and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import httpx
import pytest

from stekker.api.app import create_http_app
from stekker.api.probes import Probes
from stekker.bus import InProcessBus
from stekker.cluster.leases import RedisLeases
from stekker.cluster.node import NodeInfo, Role
from stekker.cluster.nodes import NodeBeacon
from stekker.cluster.redis_link import Keys, connect
from stekker.db.engine import make_engine, make_session_factory
from stekker.services.context import ServiceContext
from tests.conftest import make_settings
from tests.peers import raw_station
from tests.redis_server import RedisServer
from tests.test_users_roles import add_user, bearer, make_admin

SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


class WallClock:
    """Seconds since the epoch that move only when the test says so."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# ---- one process ------------------------------------------------------------------------------------


async def test_one_process_lists_itself(api: httpx.AsyncClient, ocpp_url: str) -> None:
    async with raw_station(ocpp_url, "CL1"):
        response = await api.get("/api/cluster")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["clustered"] is False and body["nodes_source"] == "local"
    [node] = body["nodes"]
    assert node["node_id"] == body["node_id"] == (await api.get("/health")).json()["node_id"]
    assert node["this_node"] is True
    assert node["roles"] == ["api", "gateway", "worker"]
    assert node["stations"] == 1
    assert node["heartbeat_age_seconds"] == 0
    assert datetime.fromisoformat(node["started_at"]) <= datetime.fromisoformat(node["heartbeat_at"])
    assert body["database"]["status"] == "ok" and body["database"]["latency_ms"] is not None
    assert body["redis"] == {"status": "not configured", "detail": None, "latency_ms": None}


@SQLITE
async def test_cluster_status_is_for_operators(api: httpx.AsyncClient) -> None:
    admin = await make_admin(api)
    assert (await api.get("/api/cluster")).status_code == 401
    assert (await api.get("/api/cluster", headers=bearer(admin))).status_code == 200
    operator = await add_user(api, admin, "op", "operator")
    assert (await api.get("/api/cluster", headers=bearer(operator))).status_code == 200
    for role in ("helpdesk", "municipality", "read-only"):
        token = await add_user(api, admin, f"u-{role}", role)
        assert (await api.get("/api/cluster", headers=bearer(token))).status_code == 403, role


@SQLITE
async def test_cluster_status_command_prints_json_and_a_table(cli: Any, api: httpx.AsyncClient) -> None:
    node_id = (await api.get("/health")).json()["node_id"]
    result = await cli("cluster", "status", "--output", "json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert [n["node_id"] for n in body["nodes"]] == [node_id]
    assert body["database"]["status"] == "ok"
    result = await cli("cluster", "status")
    assert result.exit_code == 0, result.output
    assert node_id in result.output
    assert "database: ok" in result.output and "Redis: not configured" in result.output


# ---- a cluster: nodes from their heartbeats in Redis ----------------------------------------------


@asynccontextmanager
async def cluster_api(database_url: str, redis_url: str, wall: WallClock) -> AsyncIterator[httpx.AsyncClient]:
    """The API of node "api-1" in a cluster whose Redis is `redis_url` (httpx on the ASGI app)."""
    engine = make_engine(database_url)
    redis = connect(redis_url)
    keys = Keys("stekker:")
    ctx = ServiceContext(
        make_settings(database_url, redis_url=redis_url),
        make_session_factory(engine),
        InProcessBus(),
        node=NodeInfo("api-1", frozenset({Role.API})),
        redis=redis,
        keys=keys,
        leases=RedisLeases(redis, keys, "api-1"),
    )
    app = create_http_app(ctx, probes=Probes(ctx, wall=wall))
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
            yield client
    finally:
        await redis.aclose()
        await engine.dispose()


@SQLITE
async def test_a_cluster_lists_every_live_node_from_redis(
    database_url: str, redis_server: RedisServer
) -> None:
    redis = connect(redis_server.url)
    keys = Keys("stekker:")
    gateway = NodeBeacon(
        redis,
        keys,
        NodeInfo("gw-1", frozenset({Role.GATEWAY})),
        10,
        lambda: {"stations": 1234, "leading": [], "tls": True},
    )
    worker = NodeBeacon(
        redis,
        keys,
        NodeInfo("wk-1", frozenset({Role.WORKER})),
        10,
        lambda: {"leading": ["cdr-sweep", "outbox"]},
    )
    try:
        await gateway.beat()
        await worker.beat()
        wall = WallClock(datetime.now().timestamp() + 2.5)
        async with cluster_api(database_url, redis_server.url, wall) as client:
            body = (await client.get("/api/cluster")).json()
            assert body["clustered"] is True and body["nodes_source"] == "redis"
            nodes = {n["node_id"]: n for n in body["nodes"]}
            assert set(nodes) == {"gw-1", "wk-1", "api-1"}  # api-1 has not beaten: listed all the same
            assert nodes["gw-1"]["roles"] == ["gateway"] and nodes["gw-1"]["stations"] == 1234
            assert nodes["gw-1"]["detail"] == {"tls": True}
            assert nodes["wk-1"]["leading"] == ["cdr-sweep", "outbox"]
            assert 2.0 <= nodes["gw-1"]["heartbeat_age_seconds"] <= 60  # by the injected wall clock
            assert nodes["api-1"]["this_node"] and not nodes["gw-1"]["this_node"]
            assert body["redis"]["status"] == "ok" and body["database"]["status"] == "ok"

            await gateway.stop()  # a clean stop leaves the list at once
            body = (await client.get("/api/cluster")).json()
            assert {n["node_id"] for n in body["nodes"]} == {"wk-1", "api-1"}
            # garbage where a node's heartbeat should be: still an answer, with this node in it
            await redis.set(keys.node("wk-1"), b"not json{")
            response = await client.get("/api/cluster")
            assert response.status_code == 200
            assert "api-1" in {n["node_id"] for n in response.json()["nodes"]}

            redis_server.stop()
            body = await _eventually_down(client, wall)
            assert body["redis"]["status"] == "down"
            assert body["nodes_source"] == "local"
            assert [n["node_id"] for n in body["nodes"]] == ["api-1"]
            assert body["database"]["status"] == "ok"
    finally:
        await redis.aclose()


async def _eventually_down(client: httpx.AsyncClient, wall: WallClock) -> dict[str, Any]:
    """The probes re-check once their answer is older than a second (the wall clock does not
    drive that cache: the monotonic one does), so ask until Redis shows down (bounded)."""
    for _ in range(100):
        body: dict[str, Any] = (await client.get("/api/cluster")).json()
        if body["redis"]["status"] == "down":
            return body
        await asyncio.sleep(0.1)
    raise AssertionError("Redis never showed down")
