"""Commands routed through Redis to the gateway that holds the station (issue 18, point 3).

Gateways "a" and "b" run in this process on one PostgreSQL and a private redis-server (see
tests/test_cluster_registry.py); the stations are real OCPP peers over loopback. Hostile
traffic on the command and reply lists is pushed by the test itself.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import pytest
from redis.asyncio import Redis

from stekker.cluster.redis_link import connect
from stekker.cluster.registry import Owner
from stekker.cluster.routing import _parse_reply
from stekker.logconfig import CORRELATION_ID
from stekker.metrics import COMMANDS
from stekker.services.device_model import OCPP16_COMPONENT, VariableRef, VariableResult
from stekker.services.ports import (
    ClusterUnavailable,
    CommandNotSupported,
    CommandTimeout,
    StationCallError,
    StationCommand,
    StationOffline,
)
from tests.peers import ocpp_station, raw_station
from tests.redis_server import RedisServer
from tests.test_cluster_registry import GatewayNode, cluster, eventually, migrated, online, start_node

__all__ = ["cluster"]  # the fixture, imported

BOUND = 20.0  # no command in these tests may take longer than this (a broken feature fails, not hangs)


def counted(route: str, outcome: str) -> float:
    return COMMANDS.labels(route, outcome)._value.get()  # type: ignore[no-any-return]


async def known(node: GatewayNode, station_id: str) -> bool:
    return node.commands.is_connected(station_id)


async def test_a_command_reaches_a_station_held_by_another_gateway(cluster: dict[str, GatewayNode]) -> None:
    a, b = cluster["a"], cluster["b"]
    async with ocpp_station(a.url, "CP1") as station:
        station.local_list_version = 7
        await eventually(lambda: known(b, "CP1"), "b learns that a holds CP1")
        assert b.commands.protocol("CP1") == "ocpp1.6"
        assert "CP1" in b.commands.connected_stations()
        assert "CP1" not in b.gateway.connections

        routed_ok = counted("routed", "ok")
        reply = await asyncio.wait_for(
            b.commands.send("CP1", StationCommand("get_local_list_version")), BOUND
        )
        assert reply == {"version": 7}
        assert counted("routed", "ok") == routed_ok + 1

        # a series (1.6 changes one key per call), read back into the neutral dataclasses
        ref = VariableRef(OCPP16_COMPONENT, "HeartbeatInterval")
        reply = await asyncio.wait_for(
            b.commands.send("CP1", StationCommand("set_variables", {"items": [(ref, "120")]})), BOUND
        )
        assert reply == {"results": [VariableResult(ref, "Accepted", "120")]}
        assert station.configuration == {"HeartbeatInterval": "120"}

        # the station answers a CALLERROR: the same exception as in one process
        with pytest.raises(StationCallError) as refused:
            await asyncio.wait_for(
                b.commands.send("CP1", StationCommand("raw", {"action": "GetConfiguration", "payload": {}})),
                BOUND,
            )
        assert refused.value.code == "NotImplemented"

        with pytest.raises(CommandNotSupported):
            await b.commands.send("CP1", StationCommand("no_such_function"))

        # local stays local
        local_ok = counted("local", "ok")
        assert await a.commands.send("CP1", StationCommand("get_local_list_version")) == {"version": 7}
        assert counted("local", "ok") == local_ok + 1


async def test_offline_stations_and_dead_owners_are_offline(cluster: dict[str, GatewayNode]) -> None:
    b = cluster["b"]
    with pytest.raises(StationOffline):
        await asyncio.wait_for(b.commands.send("NEVER-SEEN", StationCommand("get_local_list_version")), BOUND)
    await b.redis.hset(b.ctx.keys.owners, "HELD-BY-GHOST", "ghost|ocpp1.6")
    with pytest.raises(StationOffline):
        await asyncio.wait_for(
            b.commands.send("HELD-BY-GHOST", StationCommand("get_local_list_version")), BOUND
        )
    assert not b.commands.is_connected("HELD-BY-GHOST")


async def test_a_station_that_never_answers_times_out_within_the_bound(
    cluster: dict[str, GatewayNode],
) -> None:
    a, b = cluster["a"], cluster["b"]
    async with raw_station(a.url, "MUTE") as station:
        station.silent = True
        await eventually(lambda: known(b, "MUTE"), "b learns that a holds MUTE")
        with pytest.raises(CommandTimeout):
            await asyncio.wait_for(
                b.commands.send("MUTE", StationCommand("get_local_list_version"), timeout=0.5), BOUND
            )
        await eventually(lambda: _true(len(station.server_calls) == 1), "the CALL reached the station once")


async def test_after_a_takeover_commands_go_to_the_new_gateway(cluster: dict[str, GatewayNode]) -> None:
    a, b = cluster["a"], cluster["b"]
    async with ocpp_station(a.url, "CP1"):
        await eventually(lambda: known(b, "CP1"), "b learns that a holds CP1")
        async with ocpp_station(b.url, "CP1") as on_b:
            on_b.local_list_version = 3
            await eventually(lambda: _true("CP1" not in a.gateway.connections), "a let CP1 go")
            await eventually(lambda: _true(a.commands.is_connected("CP1")), "a knows b holds CP1")
            reply = await asyncio.wait_for(
                a.commands.send("CP1", StationCommand("get_local_list_version")), BOUND
            )
            assert reply == {"version": 3}
            assert await online(a, "CP1")


async def test_redis_away_local_commands_work_routed_ones_are_unavailable_then_all_comes_back(
    cluster: dict[str, GatewayNode], redis_server: RedisServer
) -> None:
    a, b = cluster["a"], cluster["b"]
    async with ocpp_station(a.url, "CP1") as station:
        station.local_list_version = 4
        await eventually(lambda: known(b, "CP1"), "b learns that a holds CP1")
        redis_server.stop()
        assert await asyncio.wait_for(
            a.commands.send("CP1", StationCommand("get_local_list_version")), BOUND
        ) == {"version": 4}
        unavailable = counted("routed", "unavailable")
        with pytest.raises(ClusterUnavailable) as failed:
            await asyncio.wait_for(b.commands.send("CP1", StationCommand("get_local_list_version")), BOUND)
        assert "cluster messaging unavailable" in str(failed.value)
        assert counted("routed", "unavailable") == unavailable + 1
        # the station keeps talking to a meanwhile (its frames are handled and answered)
        await asyncio.wait_for(station.boot(), BOUND)

        redis_server.start()  # empty: what a Redis without persistence looks like after a restart

        async def whole_again() -> bool:
            try:
                return await b.registry.owner("CP1") == Owner("node-a", "ocpp1.6")
            except Exception:
                return False

        await eventually(whole_again, "a re-claims CP1 once Redis is back", within=BOUND)
        reply = await asyncio.wait_for(
            b.commands.send("CP1", StationCommand("get_local_list_version")), BOUND
        )
        assert reply == {"version": 4}
        assert await online(a, "CP1")


async def test_a_station_that_moved_meanwhile_is_asked_once_more_where_it_is_now(
    cluster: dict[str, GatewayNode],
) -> None:
    a, b = cluster["a"], cluster["b"]
    keys = b.ctx.keys
    async with ocpp_station(a.url, "CP1") as station:
        station.local_list_version = 5
        await eventually(lambda: known(b, "CP1"), "b learns that a holds CP1")
        # the registry says node-c (alive) holds it; node-c, played here, says "not here" and
        # meanwhile the station is back on a
        await b.redis.set(keys.node("node-c"), "{}", px=30_000)
        await b.redis.hset(keys.owners, "CP1", "node-c|ocpp1.6")

        async def node_c() -> None:
            _, raw = await _pop(b.redis, keys.commands("node-c"))
            request = orjson.loads(raw)
            await b.redis.hset(keys.owners, "CP1", "node-a|ocpp1.6")
            failure = {"kind": "moved", "message": "not here"}
            await b.redis.lpush(
                keys.reply(request["id"]), orjson.dumps({"id": request["id"], "failure": failure})
            )

        playing = asyncio.create_task(node_c())
        reply = await asyncio.wait_for(
            b.commands.send("CP1", StationCommand("get_local_list_version")), BOUND
        )
        await asyncio.wait_for(playing, BOUND)
        assert reply == {"version": 5}


async def test_garbage_on_the_command_list_is_dropped_and_a_late_request_is_not_sent(
    cluster: dict[str, GatewayNode],
) -> None:
    a, b = cluster["a"], cluster["b"]
    queue = a.ctx.keys.commands("node-a")
    async with raw_station(a.url, "CP1") as station:
        await eventually(lambda: known(b, "CP1"), "b learns that a holds CP1")
        head = '{"id": "x", "station": "CP1", "protocol": "ocpp1.6", '
        junk: list[Any] = [
            "not json",
            "[1, 2]",
            '{"id": "x"}',
            head + '"steps": "no", "timeout": 1, "deadline": 0}',
            head + '"steps": [{"action": 1}], "timeout": 1}',
            head + '"steps": [], "timeout": 1, "deadline": 9e9}',
            head + '"steps": [{"action": "Reset", "payload": []}], "timeout": 1, "deadline": 9e9}',
            head + '"steps": [{"action": "Reset", "payload": {}}], "timeout": -1, "deadline": 9e9}',
            "x" * 2_000_000,
        ]
        late = {
            "id": "late",
            "station": "CP1",
            "protocol": "ocpp1.6",
            "command": "reset",
            "steps": [{"action": "Reset", "payload": {"type": "Hard"}, "tolerate": False}],
            "timeout": 5,
            "deadline": time.time() - 1,  # its caller gave up already
            "correlation": "c-late",
        }
        dropped = a.executor.dropped
        for item in [*junk, orjson.dumps(late)]:
            await a.redis.lpush(queue, item)
        await eventually(
            lambda: _true(a.executor.dropped == dropped + len(junk) + 1), "every bad request dropped"
        )
        assert await a.redis.exists(a.ctx.keys.reply("late")) == 0
        assert [c for c in station.server_calls if c[2] == "Reset"] == []
        # and the executor still serves
        reply = await asyncio.wait_for(
            b.commands.send("CP1", StationCommand("get_local_list_version")), BOUND
        )
        assert reply == {"version": 0}


async def test_garbage_on_the_reply_list_is_dropped_and_the_real_reply_taken(
    cluster: dict[str, GatewayNode],
) -> None:
    b = cluster["b"]
    keys = b.ctx.keys
    await b.redis.set(keys.node("node-c"), "{}", px=30_000)
    await b.redis.hset(keys.owners, "CP9", "node-c|ocpp1.6")

    async def node_c() -> None:
        _, raw = await _pop(b.redis, keys.commands("node-c"))
        request = orjson.loads(raw)
        reply_key = keys.reply(request["id"])
        for junk in (
            "not json",
            "[]",
            '{"id": "someone-else", "results": []}',
            orjson.dumps({"id": request["id"]}),
        ):
            await b.redis.lpush(reply_key, junk)
        good = {"id": request["id"], "results": [{"ok": {"listVersion": 11}}]}
        await b.redis.rpush(reply_key, orjson.dumps(good))

    playing = asyncio.create_task(node_c())
    reply = await asyncio.wait_for(b.commands.send("CP9", StationCommand("get_local_list_version")), BOUND)
    await asyncio.wait_for(playing, BOUND)
    assert reply == {"version": 11}

    # a reply of the right id but a shape that does not fit the command is an error, not a crash
    async def node_c_wrong_shape() -> None:
        _, raw = await _pop(b.redis, keys.commands("node-c"))
        request = orjson.loads(raw)
        bad = {"id": request["id"], "results": [{"ok": 1}, {"ok": {}}]}
        await b.redis.lpush(keys.reply(request["id"]), orjson.dumps(bad))

    playing = asyncio.create_task(node_c_wrong_shape())
    with pytest.raises(Exception, match="did not match"):
        await asyncio.wait_for(b.commands.send("CP9", StationCommand("get_local_list_version")), BOUND)
    await asyncio.wait_for(playing, BOUND)
    assert _parse_reply(b"\xff", "r") is None


async def test_without_an_answering_executor_the_caller_times_out(
    pg_database: str, redis_server: RedisServer
) -> None:
    """A node that holds the station but whose executor is gone (killed mid-way): the caller
    gets a timeout within the command's bound, and the request expires with the dead node."""
    url = await migrated(pg_database)
    a = await start_node(url, redis_server.url, "node-a")
    b = await start_node(url, redis_server.url, "node-b")
    try:
        async with ocpp_station(a.url, "CP1"):
            await eventually(lambda: known(b, "CP1"), "b learns that a holds CP1")
            await a.executor.stop()
            token = CORRELATION_ID.set("req-7f3a")  # an API request's id
            try:
                with pytest.raises(CommandTimeout):
                    await asyncio.wait_for(
                        b.commands.send("CP1", StationCommand("get_local_list_version"), timeout=0.3), BOUND
                    )
            finally:
                CORRELATION_ID.reset(token)
            assert 0 < await b.redis.ttl(b.ctx.keys.commands("node-a"))
            # the request carries the caller's correlation id to the gateway's log lines
            _, raw = await _pop(b.redis, b.ctx.keys.commands("node-a"))
            assert orjson.loads(raw)["correlation"] == "req-7f3a"
    finally:
        await b.stop()
        await a.stop()


async def _pop(redis: Redis, key: str) -> tuple[str, str]:
    """BRPOP with its own blocking client (the shared one has a 3 s socket timeout)."""
    client = connect(
        str(redis.connection_pool.connection_kwargs.get("host", "")) and _url(redis), blocking=True
    )
    try:
        popped = await asyncio.wait_for(client.brpop([key], timeout=BOUND), BOUND + 1)
    finally:
        await client.aclose()
    assert popped is not None, f"nothing on {key}"
    return str(popped[0]), str(popped[1])


def _url(redis: Redis) -> str:
    kw = redis.connection_pool.connection_kwargs
    return f"redis://{kw['host']}:{kw['port']}/{kw.get('db', 0)}"


async def _true(value: bool) -> bool:
    return value


async def test_a_command_in_flight_while_redis_restarts_gets_the_station_s_answer(
    cluster: dict[str, GatewayNode], redis_server: RedisServer
) -> None:
    """Handed over, then Redis restarts before the station answers: the caller waits on a fresh
    connection and gets the answer, instead of "unavailable" (tried again, the station would
    do it twice)."""
    a, b = cluster["a"], cluster["b"]
    async with raw_station(a.url, "SLOW") as station:
        station.silent = True  # it answers when the test says so
        await eventually(lambda: known(b, "SLOW"), "b learns that a holds SLOW")
        sent = asyncio.create_task(
            b.commands.send("SLOW", StationCommand("get_local_list_version"), timeout=8)
        )
        await eventually(lambda: _true(len(station.server_calls) == 1), "the CALL reached the station")
        redis_server.stop()
        redis_server.start()
        await station.ws.send(orjson.dumps([3, station.server_calls[0][1], {"listVersion": 9}]).decode())
        assert await asyncio.wait_for(sent, BOUND) == {"version": 9}
        assert len(station.server_calls) == 1  # asked once
