"""A remote command's round trip: local (this process holds the station's socket) vs routed
through Redis to the gateway that holds it (issue 18, point 3).

Two gateway nodes ("a" and "b") run in this one process, each with its own engine, writer, Redis
clients, station registry, node heartbeat and command executor, on one throw-away PostgreSQL
database and a private redis-server (both on loopback). One simulated OCPP 1.6 station (raw
websockets, answers every CALL at once) connects to "a". Then, for each route:

- local:  a's command port sends GetLocalListVersion to the station (a holds the socket);
- routed: b's command port sends the same; it goes b → Redis → a's executor → station → a →
  Redis → b.

N commands one after the other (each waits for its answer), after a warm-up, then the same N with
`--concurrency` callers at once (the station still answers one CALL at a time: OCPP allows one
outstanding CALL, so concurrency here measures queueing, not parallelism). Prints p50/p99/max in
ms per route and the routed ÷ local ratio; the baseline is the local route of the same run.

    .venv/bin/python bench/command_routing.py                      # N=500
    .venv/bin/python bench/command_routing.py --commands 2000 --concurrency 20

Needs redis-server on PATH and PostgreSQL at --postgres-admin-url (trust), as the tests do.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
from websockets.asyncio.client import connect as ws_connect

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stekker.bus import InProcessBus
from stekker.cluster.leases import RedisLeases
from stekker.cluster.node import NodeInfo
from stekker.cluster.nodes import NodeBeacon
from stekker.cluster.redis_link import Keys, connect
from stekker.cluster.registry import StationRegistry
from stekker.cluster.routing import CommandExecutor, RoutedCommands
from stekker.config import Settings
from stekker.db.engine import make_engine, make_session_factory
from stekker.db.migrate import upgrade
from stekker.db.writer import GroupCommitWriter
from stekker.ocpp.server import Gateway
from stekker.services.context import ServiceContext
from stekker.services.ports import StationCommand

COMMAND = StationCommand("get_local_list_version")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def redis_server() -> Any:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is needed on PATH")
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="bench-redis-")
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            workdir,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.kill()
        process.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.asynccontextmanager
async def throwaway_database(admin_url: str) -> AsyncIterator[str]:
    name = f"stekker_bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    try:
        yield f"{base}/{name}"
    finally:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


class Node:
    """One gateway node, wired in the order the app uses."""

    def __init__(self, database_url: str, redis_url: str, node_id: str) -> None:
        self.settings = Settings(
            database_url=database_url,
            redis_url=redis_url,
            node_id=node_id,
            host="127.0.0.1",
            ocpp_port=0,
            http_port=0,
            unknown_stations="accept",  # type: ignore[arg-type]
            configure_stations_on_boot=False,
            log_level="WARNING",
            # the station's fair share counts its replies too (20 frames/s by default): lift it,
            # or every command waits for its token and we measure the throttle
            ocpp_station_rate=100_000,
            ocpp_station_burst=100_000,
        )
        self.engine = make_engine(database_url)
        factory = make_session_factory(self.engine)
        self.writer = GroupCommitWriter(factory, workers=2)
        self.redis = connect(redis_url)
        keys = Keys(self.settings.redis_prefix)
        node = NodeInfo(node_id)
        lease = self.settings.cluster_lease_seconds
        self.ctx = ServiceContext(
            self.settings,
            factory,
            InProcessBus(),
            writer=self.writer,
            node=node,
            redis=self.redis,
            keys=keys,
            leases=RedisLeases(self.redis, keys, node_id),
        )
        self.beacon = NodeBeacon(self.redis, keys, node, lease)
        self.registry = StationRegistry(self.redis, keys, node_id, lease)
        self.gateway = Gateway(self.ctx, None, self.registry)
        self.executor = CommandExecutor(self.ctx, self.gateway, self.registry)
        self.commands = RoutedCommands(self.ctx, self.gateway, self.registry)
        self.ctx.commands = self.commands
        self.port = 0

    async def start(self) -> None:
        self.writer.start()
        await self.beacon.start()
        await self.registry.start()
        self.port = await self.gateway.start("127.0.0.1", 0) or 0
        await self.executor.start()

    async def stop(self) -> None:
        await self.executor.stop()
        await self.gateway.stop()
        await self.registry.stop()
        await self.beacon.stop()
        await self.commands.close()
        await self.writer.stop()
        await self.engine.dispose()
        await self.redis.aclose()


async def station(url: str, station_id: str, ready: asyncio.Event, stop: asyncio.Event) -> None:
    """A simulated OCPP 1.6 station: boots, then answers every CALL at once."""
    async with ws_connect(f"{url}/{station_id}", subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]
        await ws.send(
            json.dumps([2, "b1", "BootNotification", {"chargePointVendor": "B", "chargePointModel": "M"}])
        )

        async def read() -> None:
            async for message in ws:
                frame = json.loads(message)
                if frame[0] == 2:
                    answer = (
                        {"listVersion": 1} if frame[2] == "GetLocalListVersion" else {"status": "Accepted"}
                    )
                    await ws.send(json.dumps([3, frame[1], answer]))
                elif frame[1] == "b1":
                    ready.set()

        reader = asyncio.create_task(read())
        await stop.wait()
        reader.cancel()


async def timed(node: Node, station_id: str, n: int, concurrency: int) -> list[float]:
    samples: list[float] = []
    queue: asyncio.Queue[None] = asyncio.Queue()
    for _ in range(n):
        queue.put_nowait(None)

    async def caller() -> None:
        while not queue.empty():
            queue.get_nowait()
            started = time.perf_counter()
            reply = await asyncio.wait_for(node.commands.send(station_id, COMMAND), 30)
            samples.append(time.perf_counter() - started)
            assert reply == {"version": 1}, reply

    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return samples


def summary(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered) * 1000, p99 * 1000, ordered[-1] * 1000


async def run(args: argparse.Namespace) -> None:
    with redis_server() as redis_url:
        async with throwaway_database(args.postgres_admin_url) as db_url:
            engine = make_engine(db_url)
            await upgrade(engine)
            await engine.dispose()
            a, b = Node(db_url, redis_url, "bench-a"), Node(db_url, redis_url, "bench-b")
            await a.start()
            await b.start()
            ready, stop = asyncio.Event(), asyncio.Event()
            sim = asyncio.create_task(station(f"ws://127.0.0.1:{a.port}/ocpp", "BENCH1", ready, stop))
            try:
                await asyncio.wait_for(ready.wait(), 30)
                deadline = time.monotonic() + 30
                while not b.commands.is_connected("BENCH1"):
                    if time.monotonic() > deadline:
                        sys.exit("b never learnt that a holds the station")
                    await asyncio.sleep(0.05)
                await timed(a, "BENCH1", 50, 1)  # warm-up, both routes
                await timed(b, "BENCH1", 50, 1)
                rows = []
                for concurrency in sorted({1, args.concurrency}):
                    local = summary(await timed(a, "BENCH1", args.commands, concurrency))
                    routed = summary(await timed(b, "BENCH1", args.commands, concurrency))
                    rows.append((concurrency, local, routed))
            finally:
                stop.set()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(sim, 10)
                await b.stop()
                await a.stop()
    cpu = platform.processor() or platform.machine()
    print(f"machine: {cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}")
    print(f"redis-server and PostgreSQL on loopback; both gateways in one process; {args.commands} commands")
    print("| callers | route  | p50 ms | p99 ms | max ms | p50 ÷ local | p99 ÷ local |")
    print("|--------:|--------|-------:|-------:|-------:|------------:|------------:|")
    for concurrency, local, routed in rows:
        print(f"| {concurrency} | local  | {local[0]:.2f} | {local[1]:.2f} | {local[2]:.2f} | 1.00 | 1.00 |")
        print(
            f"| {concurrency} | routed | {routed[0]:.2f} | {routed[1]:.2f} | {routed[2]:.2f} "
            f"| {routed[0] / local[0]:.2f} | {routed[1] / local[1]:.2f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--commands", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--postgres-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
