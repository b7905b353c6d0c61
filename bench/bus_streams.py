"""Events through the cluster's Redis stream bus against the in-process bus, in the same run.

    .venv/bin/python bench/bus_streams.py [--events 20000] [--concurrency 1,32]

Starts a private redis-server (Debian's, on a free loopback port, nothing on disk) and, in
this one process (one event loop, uvloop if installed), for each publishing concurrency:
- `in-process`: InProcessBus, one subscriber (the baseline: what one process does today);
- `stream group`: a publishing StreamBus ("gateway") and a second StreamBus ("worker") with a
  consumer group handler: every event goes XADD → XREADGROUP → handler → XACK;
- `stream fan-out`: the same with a fan-out subscriber in the worker (XREAD, no ack).
Columns: events/s published (`publish` awaited by `--concurrency` publishers at once), events/s
handled end to end (first publish to last handler call), and the publish → handler latency
p50/p99 in ms. Both buses share one event loop and one core here, with redis-server on the
other: a cluster spreads them over processes, so this is a floor, not a ceiling.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any

from stekker.bus import Event, InProcessBus
from stekker.bus.streams import StreamBus
from stekker.cluster.redis_link import Keys


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_redis(workdir: str) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is needed (apt-get install redis-server)")
    port = free_port()
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
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), 0.2) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return process, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("redis-server did not start")


def redis_version() -> str:
    out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True, check=False).stdout
    return out.split()[2] if len(out.split()) > 2 else "?"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else 0.0


async def run(
    make: Callable[[], Any], events: int, concurrency: int, group: str | None
) -> tuple[float, float, float, float]:
    publisher, consumer = make()
    latencies: list[float] = []
    done = asyncio.Event()

    async def handler(event: Event) -> None:
        latencies.append(time.perf_counter() - event.data["t"])
        if len(latencies) == events:
            done.set()

    consumer.subscribe("session.", handler, group=group)
    await consumer.start()
    if publisher is not consumer:
        await publisher.start()
    counter = iter(range(events))

    async def publish_some() -> None:
        for n in counter:
            await publisher.publish(
                Event("session.meter", {"n": n, "t": time.perf_counter(), "energy_wh": 1234})
            )

    started = time.perf_counter()
    await asyncio.gather(*(publish_some() for _ in range(concurrency)))
    published = time.perf_counter() - started
    await asyncio.wait_for(done.wait(), 300)
    handled = time.perf_counter() - started
    await consumer.stop()
    if publisher is not consumer:
        await publisher.stop()
    return (
        events / published,
        events / handled,
        percentile(latencies, 0.5) * 1000,
        percentile(latencies, 0.99) * 1000,
    )


async def main(events: int, concurrencies: list[int]) -> None:
    workdir = tempfile.mkdtemp()
    redis, url = start_redis(workdir)
    rows = []
    try:
        for concurrency in concurrencies:

            def in_process() -> tuple[Any, Any]:
                bus = InProcessBus()
                return bus, bus

            def streams() -> tuple[Any, Any]:
                keys = Keys(f"bench{uuid.uuid4().hex[:6]}:")
                return (
                    StreamBus(url, keys, "gateway", None, groups=("g",)),
                    StreamBus(url, keys, "worker", None, groups=("g",)),
                )

            for name, make, group in (
                ("in-process", in_process, None),
                ("stream group", streams, "g"),
                ("stream fan-out", streams, None),
            ):
                result = await run(make, events, concurrency, group)
                rows.append((name, concurrency, *result))
    finally:
        redis.kill()
        redis.wait()
        shutil.rmtree(workdir, ignore_errors=True)

    version = redis_version()
    print(
        f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}, "
        f"redis {version}, {events} events per row"
    )
    print(f"{'bus':<16}{'publishers':>11}{'published/s':>13}{'handled/s':>11}{'p50 ms':>9}{'p99 ms':>9}")
    for name, concurrency, pub, handled, p50, p99 in rows:
        print(f"{name:<16}{concurrency:>11}{pub:>13,.0f}{handled:>11,.0f}{p50:>9.2f}{p99:>9.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--concurrency", default="1,32", help="publishers at once, a comma list")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main(args.events, [int(c) for c in args.concurrency.split(",")]))
