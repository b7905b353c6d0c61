"""Node heartbeats in Redis: who is alive, and a heartbeat nobody can read."""

from __future__ import annotations

import asyncio

from stekker.cluster.node import NodeInfo, Role
from stekker.cluster.nodes import NodeBeacon, alive, live_nodes
from stekker.cluster.redis_link import Keys, connect
from tests.redis_server import RedisServer


async def test_beating_nodes_are_alive_until_they_stop_or_their_lease_runs_out(
    redis_server: RedisServer,
) -> None:
    redis = connect(redis_server.url)
    keys = Keys("t:")
    try:
        gateway = NodeBeacon(
            redis, keys, NodeInfo("gw-1", frozenset({Role.GATEWAY})), 0.3, lambda: {"stations": 7}
        )
        worker = NodeBeacon(redis, keys, NodeInfo("wk-1", frozenset({Role.WORKER})), 30, dict)
        await gateway.start()
        await worker.start()
        [first, second] = await live_nodes(redis, keys)
        assert (first.node_id, first.roles, first.stations) == ("gw-1", ["gateway"], 7)
        assert (second.node_id, second.roles, second.stations) == ("wk-1", ["worker"], 0)

        await worker.stop()  # a clean stop leaves at once
        assert await alive(redis, keys, ["gw-1", "wk-1", "nobody"]) == {"gw-1"}

        gateway._task.cancel()  # type: ignore[union-attr]  # killed: it beats no more
        for _ in range(100):
            if not await alive(redis, keys, ["gw-1"]):
                break
            await asyncio.sleep(0.05)
        assert await alive(redis, keys, ["gw-1"]) == set()
        assert await live_nodes(redis, keys) == []
    finally:
        await redis.aclose()


async def test_an_unreadable_heartbeat_is_left_out_not_a_crash(redis_server: RedisServer) -> None:
    redis = connect(redis_server.url)
    keys = Keys("t:")
    try:
        beacon = NodeBeacon(redis, keys, NodeInfo("ok-1"), 30, dict)
        await beacon.start()
        await redis.zadd(keys.nodes, {"junk-1": 1.0, "junk-2": 2.0})
        await redis.set(keys.node("junk-1"), b"\xff not json")
        await redis.set(keys.node("junk-2"), '{"roles": 5, "stations": "many"}')
        assert [n.node_id for n in await live_nodes(redis, keys)] == ["ok-1"]
        await beacon.stop()
    finally:
        await redis.aclose()
