"""The station registry across gateways: claims, takeovers, dead nodes, the orphan sweep.

Two (or three) gateway nodes run in this test process, each with its own engine, writer, bus,
Redis client, registry and node heartbeat, on one PostgreSQL database and one private
redis-server; stations are real OCPP peers over loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy import select, update

from stekker.bus import InProcessBus
from stekker.cluster.leases import RedisLeases
from stekker.cluster.node import NodeInfo
from stekker.cluster.nodes import NodeBeacon
from stekker.cluster.redis_link import Keys, connect
from stekker.cluster.registry import OrphanSweeper, Owner, OwnerChange, StationRegistry
from stekker.cluster.routing import CommandExecutor, RoutedCommands
from stekker.db.engine import make_engine, make_session_factory
from stekker.db.migrate import upgrade
from stekker.db.models import ChargingStation, StationEvent
from stekker.db.writer import GroupCommitWriter
from stekker.ocpp.server import Gateway
from stekker.services.context import ServiceContext
from tests.conftest import _empty_postgres, make_settings
from tests.peers import ocpp_station
from tests.redis_server import RedisServer

LEASE = 1.0  # node heartbeat TTL in these tests: a "dead" node drops out within a second


async def eventually(check: Callable[[], Awaitable[bool]], what: str, within: float = 15.0) -> None:
    """Poll `check` until true; fail naming `what` after `within` seconds (never hang)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"not within {within} s: {what}")


@dataclass
class GatewayNode:
    """One gateway process of a cluster, as the app wires it (built here, in one test process)."""

    node_id: str
    ctx: ServiceContext
    gateway: Gateway
    registry: StationRegistry
    beacon: NodeBeacon
    commands: RoutedCommands
    executor: CommandExecutor
    writer: GroupCommitWriter
    engine: Any
    redis: Redis
    port: int = 0
    extra: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ocpp"

    async def kill(self) -> None:
        """Die without a word: no more heartbeats (the key expires), no executor, no registry
        loop. Its sockets stay open until `stop` (a dead process's are simply gone)."""
        task = self.beacon._task
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self.beacon._task = None
        await self.executor.stop()
        await self.registry.stop()

    async def stop(self) -> None:
        for undo in self.extra:
            await undo()
        await self.executor.stop()
        await self.gateway.stop()
        await self.registry.stop()
        await self.beacon.stop()
        await self.commands.close()
        await self.writer.stop()
        await self.engine.dispose()
        with contextlib.suppress(Exception):
            await self.redis.aclose()


async def start_node(database_url: str, redis_url: str, node_id: str, **overrides: Any) -> GatewayNode:
    """The order the app must follow: beacon (the node is alive), registry (mirror loaded,
    channel followed), gateway (claims as stations come), executor, command port."""
    settings = make_settings(
        database_url,
        redis_url=redis_url,
        node_id=node_id,
        cluster_lease_seconds=LEASE,
        **overrides,
    )
    engine = make_engine(database_url)
    factory = make_session_factory(engine)
    writer = GroupCommitWriter(factory, workers=2)
    writer.start()
    redis = connect(redis_url)
    keys = Keys(settings.redis_prefix)
    node = NodeInfo(node_id)
    ctx = ServiceContext(
        settings,
        factory,
        InProcessBus(),
        writer=writer,
        node=node,
        redis=redis,
        keys=keys,
        leases=RedisLeases(redis, keys, node_id),
    )
    registry = StationRegistry(redis, keys, node_id, LEASE, resync_seconds=2.0)
    beacon = NodeBeacon(redis, keys, node, LEASE)
    await beacon.start()
    await registry.start()
    gateway = Gateway(ctx, None, registry)
    port = await gateway.start("127.0.0.1", 0)
    assert port is not None
    executor = CommandExecutor(ctx, gateway, registry, poll_seconds=0.2)
    await executor.start()
    commands = RoutedCommands(ctx, gateway, registry)
    ctx.commands = commands
    return GatewayNode(
        node_id, ctx, gateway, registry, beacon, commands, executor, writer, engine, redis, port
    )


async def migrated(pg_database: str) -> str:
    engine = make_engine(pg_database)
    await upgrade(engine)
    await engine.dispose()
    await _empty_postgres(pg_database)
    return pg_database


@pytest.fixture
async def cluster(pg_database: str, redis_server: RedisServer) -> AsyncIterator[dict[str, GatewayNode]]:
    """Gateways "a" and "b" on one database and one Redis."""
    url = await migrated(pg_database)
    nodes: dict[str, GatewayNode] = {}
    try:
        nodes["a"] = await start_node(url, redis_server.url, "node-a")
        nodes["b"] = await start_node(url, redis_server.url, "node-b")
        yield nodes
    finally:
        for node in nodes.values():
            with contextlib.suppress(Exception):
                await node.stop()


async def station_row(node: GatewayNode, station_id: str) -> ChargingStation | None:
    async with node.ctx.db() as db:
        return await db.get(ChargingStation, station_id)


async def event_kinds(node: GatewayNode, station_id: str) -> list[tuple[str, dict[str, Any]]]:
    async with node.ctx.db() as db:
        rows = await db.scalars(
            select(StationEvent).where(StationEvent.station_id == station_id).order_by(StationEvent.id)
        )
        return [(e.kind, dict(e.detail or {})) for e in rows]


async def online(node: GatewayNode, station_id: str) -> bool:
    row = await station_row(node, station_id)
    return row is not None and bool(row.online)


# ---- the registry alone --------------------------------------------------------------------


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = connect(redis_server.url)
    yield client
    await client.aclose()


async def test_claim_release_owner_and_takeover_notice(redis: Redis) -> None:
    keys = Keys("t:")
    a = StationRegistry(redis, keys, "na", LEASE)
    b = StationRegistry(redis, keys, "nb", LEASE)
    beacons = [NodeBeacon(redis, keys, NodeInfo(n), LEASE) for n in ("na", "nb")]
    for beacon in beacons:
        await beacon.start()
    taken: list[tuple[str, int]] = []
    held_a: dict[str, tuple[str, int | None]] = {}
    a.attach(lambda: held_a, lambda sid, seq: taken.append((sid, seq)))
    await a.start()
    try:
        previous, first = await a.claim("S1", "ocpp1.6")
        assert previous is None and first is not None
        held_a["S1"] = ("ocpp1.6", first)
        assert await b.owner("S1") == Owner("na", "ocpp1.6")
        await eventually(lambda: _true(a.mirrored_owner("S1") is not None), "a's mirror sees its claim")

        previous, seq = await b.claim("S1", "ocpp2.0.1")
        assert previous == "na" and seq is not None and seq > first
        await eventually(lambda: _true(taken == [("S1", seq)]), "a told of the takeover")
        assert a.mirrored_owner("S1") == Owner("nb", "ocpp2.0.1")
        assert await a.release("S1") is False  # b's now: a late close never erases it
        assert await a.owner("S1") == Owner("nb", "ocpp2.0.1")
        assert await b.release("S1") is True
        assert await a.owner("S1") is None
        await eventually(lambda: _true(a.mirrored_owner("S1") is None), "a's mirror sees the release")
    finally:
        await a.stop()
        for beacon in beacons:
            await beacon.stop()


async def test_a_notice_older_than_our_claim_is_no_takeover(redis: Redis) -> None:
    keys = Keys("t:")
    a = StationRegistry(redis, keys, "na", LEASE)
    taken: list[str] = []
    a.attach(lambda: {"S1": ("ocpp1.6", 5)}, lambda sid, seq: taken.append(sid))
    a._apply(b'{"station": "S1", "owner": "nb|ocpp1.6", "previous": "na", "seq": 4}')
    a._apply(b'{"station": "S1", "owner": "nb|ocpp1.6", "previous": "na", "seq": 6}')
    assert taken == ["S1"]


async def test_claims_stay_ordered_across_a_redis_restart(redis_server: RedisServer) -> None:
    keys = Keys("t:")
    client = connect(redis_server.url)
    try:
        a = StationRegistry(client, keys, "na", LEASE)
        _, before = await a.claim("S1", "ocpp1.6")
        redis_server.stop()
        redis_server.start()  # empty
        with contextlib.suppress(Exception):
            await client.ping()  # the pooled connection died with the server: the first call fails
        a.healthy = True
        _, after = await a.claim("S2", "ocpp1.6")
        assert before is not None and after is not None and after > before
        await client.set(keys("owners", "seq"), str(after + 10**9))  # a clock that went back
        _, later = await a.claim("S3", "ocpp1.6")
        assert later is not None and later > after + 10**9
    finally:
        await client.aclose()


async def test_a_dead_owner_counts_as_no_owner(redis: Redis) -> None:
    keys = Keys("t:")
    registry = StationRegistry(redis, keys, "na", LEASE)
    await redis.hset(keys.owners, "S1", "ghost|ocpp1.6")
    assert await registry.owner("S1") is None
    assert await registry.live_owners(["S1"]) == {}
    await registry.resync()
    assert registry.mirrored_owner("S1") is None
    assert registry.mirrored_stations() == []
    await redis.set(keys.node("ghost"), "{}", px=5000)  # it beats again
    assert await registry.owner("S1") == Owner("ghost", "ocpp1.6")
    await registry.resync()
    assert registry.mirrored_owner("S1") == Owner("ghost", "ocpp1.6")


async def test_hostile_owner_values_and_notices_are_ignored(redis: Redis) -> None:
    keys = Keys("t:")
    registry = StationRegistry(redis, keys, "na", LEASE)
    beacon = NodeBeacon(redis, keys, NodeInfo("nb"), LEASE)
    await beacon.start()
    await redis.hset(keys.owners, mapping={"S1": "garbage", "S2": "|", "S3": "nb|ocpp1.6"})
    await registry.start()
    try:
        for junk in ("not json", "[]", '{"station": 1, "seq": 1}', '{"station": "S9", "seq": true}', "\xff"):
            await redis.publish(keys.owner_changes, junk)
        await redis.publish(keys.owner_changes, '{"station": "S4", "owner": "nb|ocpp1.6", "seq": 9}')
        await eventually(lambda: _true(registry.mirrored_owner("S4") is not None), "a good notice after junk")
        assert registry.mirrored_owner("S1") is None and registry.mirrored_owner("S2") is None
        assert registry.mirrored_owner("S3") == Owner("nb", "ocpp1.6")
        assert await registry.owner("S1") is None
    finally:
        await registry.stop()
        await beacon.stop()
    assert OwnerChange.parse(b"{") is None
    assert Owner.decode(None) is None and Owner.decode(12) is None


async def _true(value: bool) -> bool:
    return value


# ---- gateways ------------------------------------------------------------------------------


async def test_reconnect_to_another_gateway_takes_the_station_over(cluster: dict[str, GatewayNode]) -> None:
    a, b = cluster["a"], cluster["b"]
    async with ocpp_station(a.url, "CP1") as on_a:
        await eventually(lambda: online(a, "CP1"), "CP1 online via a")
        assert await a.registry.owner("CP1") == Owner("node-a", "ocpp1.6")
        async with ocpp_station(b.url, "CP1"):
            # a closes its stale socket as replaced
            await asyncio.wait_for(on_a._connection.wait_closed(), 15)
            assert on_a._connection.close_code == 1001
            assert on_a._connection.close_reason == "replaced by a new connection"
            await eventually(lambda: _true("CP1" not in a.gateway.connections), "a forgot CP1")
            assert "CP1" in b.gateway.connections
            assert await a.registry.owner("CP1") == Owner("node-b", "ocpp1.6")
            await asyncio.sleep(0.3)  # a's socket end has been handled: nothing may follow
            assert await online(a, "CP1")
            kinds = [k for k, _ in await event_kinds(a, "CP1")]
            assert "disconnected" not in kinds, kinds
            assert kinds.count("connected") == 2
            assert a.commands.is_connected("CP1") and a.commands.protocol("CP1") == "ocpp1.6"
        # closed on b now: released, and recorded as a disconnect once
        await eventually(lambda: _not(online(a, "CP1")), "CP1 offline after its last socket closed")
        assert await a.registry.owner("CP1") is None
        kinds = [k for k, _ in await event_kinds(a, "CP1")]
        assert kinds.count("disconnected") == 1


async def _not(value: Awaitable[bool]) -> bool:
    return not await value


async def test_a_second_gateway_starting_marks_nothing_offline(
    pg_database: str, redis_server: RedisServer
) -> None:
    url = await migrated(pg_database)
    a = await start_node(url, redis_server.url, "node-a")
    b: GatewayNode | None = None
    try:
        async with ocpp_station(a.url, "CP1"):
            await eventually(lambda: online(a, "CP1"), "CP1 online via a")
            b = await start_node(url, redis_server.url, "node-b")
            sweeper = OrphanSweeper(b.ctx, b.registry, grace=0)
            assert await sweeper.sweep_once() == []
            assert await sweeper.sweep_once() == []
            assert await online(a, "CP1")
            assert [k for k, _ in await event_kinds(a, "CP1")].count("disconnected") == 0
    finally:
        if b is not None:
            await b.stop()
        await a.stop()


async def test_the_sweeper_marks_a_dead_gateways_stations_offline_and_nothing_else(
    cluster: dict[str, GatewayNode],
) -> None:
    a, b = cluster["a"], cluster["b"]
    async with ocpp_station(a.url, "ON-A"), ocpp_station(b.url, "ON-B"):
        await eventually(lambda: online(a, "ON-A"), "ON-A online")
        await eventually(lambda: online(b, "ON-B"), "ON-B online")
        seen = (await station_row(a, "ON-A")).last_seen  # type: ignore[union-attr]
        assert seen is not None

        # and one left online by a gateway that died long ago, with no owner at all
        async def ghost(db: Any) -> None:
            db.add(ChargingStation(id="GHOST", online=True, last_seen=seen - timedelta(hours=1)))

        await b.ctx.write(ghost)
        sweeper = OrphanSweeper(b.ctx, b.registry, grace=0.3)
        first = await sweeper.sweep_once()
        assert first == []  # suspected only: GHOST must stay an orphan for the grace
        assert set(sweeper.suspects) == {"GHOST"}

        await a.kill()
        await eventually(lambda: _true(not b.commands.is_connected("ON-A")), "a's station offline to b")
        await asyncio.sleep(0.35)
        swept: list[str] = []

        async def swept_both() -> bool:
            swept.extend(await sweeper.sweep_once())
            return {"ON-A", "GHOST"} <= set(swept)

        await eventually(swept_both, "the sweep marks a's station and the ghost offline")
        assert sorted(swept) == ["GHOST", "ON-A"]
        row = await station_row(b, "ON-A")
        # dated at its last sign of life (a's last-seen flush may have moved it since we looked)
        assert row is not None and not row.online and row.last_seen is not None
        assert row.disconnected_at == row.last_seen
        ends = [d for k, d in await event_kinds(b, "ON-A") if k == "disconnected"]
        assert [d["cause"] for d in ends] == ["gateway_lost"]
        async with b.ctx.db() as db:
            at = await db.scalar(
                select(StationEvent.occurred_at).where(
                    StationEvent.station_id == "ON-A", StationEvent.kind == "disconnected"
                )
            )
        assert at == row.last_seen
        assert await online(b, "ON-B")
        assert await sweeper.sweep_once() == []


async def test_the_sweep_leaves_a_station_that_connected_again_meanwhile(
    cluster: dict[str, GatewayNode],
) -> None:
    b = cluster["b"]

    async def ghost(db: Any) -> None:
        db.add(ChargingStation(id="BACK", online=True))

    await b.ctx.write(ghost)
    sweeper = OrphanSweeper(b.ctx, b.registry, grace=0)
    sweeper.suspects["BACK"] = b.ctx.now() - timedelta(seconds=5)

    async def reconnected(db: Any) -> None:  # as `stations.connected` writes it, after the suspicion
        await db.execute(
            update(ChargingStation).where(ChargingStation.id == "BACK").values(connected_at=b.ctx.now())
        )

    await b.ctx.write(reconnected)
    assert await sweeper.sweep_once() == []
    assert await online(b, "BACK")


async def test_the_sweep_runs_on_one_node_under_its_lease(cluster: dict[str, GatewayNode]) -> None:
    a, b = cluster["a"], cluster["b"]
    sweepers = [OrphanSweeper(n.ctx, n.registry, interval=0.1, grace=0.1) for n in (a, b)]
    for s in sweepers:
        await s.start()
    try:
        await eventually(lambda: _true(sum(s.sweeps > 2 for s in sweepers) == 1), "one sweeper runs")
        assert sum(s.sweeps for s in sweepers) == max(s.sweeps for s in sweepers)
    finally:
        for s in sweepers:
            await s.stop()


async def test_redis_away_stations_still_come_and_go_and_the_registry_is_mended_after(
    cluster: dict[str, GatewayNode], redis_server: RedisServer
) -> None:
    a = cluster["a"]
    async with ocpp_station(a.url, "LEAVES"):
        await eventually(lambda: online(a, "LEAVES"), "LEAVES online")
        redis_server.stop()
        # a station that connects while Redis is away is served (booted, online) all the same
        async with ocpp_station(a.url, "COMES") as comes:
            await asyncio.wait_for(comes.boot(), 15)
            await eventually(lambda: online(a, "COMES"), "COMES online without Redis")
            await asyncio.sleep(0.1)
        # ... and LEAVES goes while Redis is away: its entry is left behind in Redis for now
        await eventually(lambda: _not(online(a, "COMES")), "COMES offline after its close")
    await eventually(lambda: _not(online(a, "LEAVES")), "LEAVES offline after its close")

    async with ocpp_station(a.url, "STAYS"):
        await eventually(lambda: online(a, "STAYS"), "STAYS online without Redis")
        redis_server.start()  # empty, as a restart without persistence leaves it

        async def mended() -> bool:
            try:
                owners = await a.redis.hgetall(a.ctx.keys.owners)
            except Exception:
                return False
            return owners == {"STAYS": "node-a|ocpp1.6"}

        await eventually(mended, "the registry holds exactly what a holds", within=20)


async def test_a_stale_entry_of_ours_is_released_at_resync(cluster: dict[str, GatewayNode]) -> None:
    a, b = cluster["a"], cluster["b"]
    await a.redis.hset(a.ctx.keys.owners, mapping={"GONE": "node-a|ocpp1.6", "THEIRS": "node-b|ocpp1.6"})
    await a.registry.resync()
    assert await a.redis.hgetall(a.ctx.keys.owners) == {"THEIRS": "node-b|ocpp1.6"}
    assert b.registry.node_id == "node-b"
