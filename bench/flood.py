"""One station floods the gateway with pipelined Heartbeats while another does ordinary round
trips: what the calm station sees, what the flooder gets, and what the message log loses, with
the per-station limits (defaults) and without them (the baseline, in the same go).

    .venv/bin/python bench/flood.py [--seconds 15] [--pad 0]

For each setting it starts `stekker serve` on a fresh SQLite database as a subprocess and, over
loopback, runs a flooder (in a process of its own: sends `[2,"f","Heartbeat",{}]` frames as
fast as its socket takes them, never waiting for answers) and a calm station (a Heartbeat every
100 ms, within its share, timing each round trip) for `--seconds`. "without limits" sets
STEKKER_OCPP_STATION_RATE and _BURST to 10^9 and _FLOOD_SECONDS to 10^6: the gateway as it was
before the limits. Prints a markdown table and writes it to bench/results/flood.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
import websockets

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.opendata import free_port, machine, publish  # noqa: E402

UNLIMITED = {
    "STEKKER_OCPP_STATION_RATE": "1000000000",
    "STEKKER_OCPP_STATION_BURST": "1000000000",
    "STEKKER_OCPP_FLOOD_SECONDS": "1000000",
}


def flooder_process(ws_url: str, seconds: float, pad: int, out: Any) -> None:
    """The flooder, in a process of its own so it does not slow the calm station's timing."""

    async def go() -> tuple[int, str]:
        sub: Any = ["ocpp1.6"]
        async with websockets.connect(f"{ws_url}/FLOODER", subprotocols=sub, close_timeout=1) as ws:
            await ws.send(BOOT)
            await ws.recv()
            answered = 0
            stop = time.monotonic() + seconds
            frame = '[2,"f","Heartbeat",{}' + " " * pad + "]"

            async def flood() -> None:
                with contextlib.suppress(websockets.ConnectionClosed):
                    while time.monotonic() < stop:
                        for _ in range(100):
                            await ws.send(frame)
                        await asyncio.sleep(0)  # send() does not yield while the kernel takes it all

            async def count() -> None:
                nonlocal answered
                with contextlib.suppress(websockets.ConnectionClosed):
                    async for _ in ws:
                        answered += 1

            tasks = [asyncio.create_task(flood()), asyncio.create_task(count())]
            await asyncio.sleep(seconds)
            for task in tasks:
                task.cancel()
            closed = "open" if ws.close_code is None else f"closed {ws.close_code}"
            return answered, closed

    out.put(asyncio.run(go()))


BOOT = json.dumps([2, "b", "BootNotification", {"chargePointVendor": "B", "chargePointModel": "F"}])


async def run(ws_url: str, http_url: str, seconds: float, pad: int) -> dict[str, Any]:
    sub: Any = ["ocpp1.6"]
    results: Any = multiprocessing.Queue()
    flooder = multiprocessing.Process(target=flooder_process, args=(ws_url, seconds, pad, results))
    async with websockets.connect(f"{ws_url}/CALM", subprotocols=sub, close_timeout=1) as calm:
        await calm.send(BOOT)
        await calm.recv()
        flooder.start()
        await asyncio.sleep(1.0)  # the flood is on
        stop = time.monotonic() + seconds - 1.5
        rtts: list[float] = []
        timeouts = 0
        n = 0
        while time.monotonic() < stop:
            n += 1
            started = time.perf_counter()
            await calm.send(json.dumps([2, f"c{n}", "Heartbeat", {}]))
            try:
                await asyncio.wait_for(calm.recv(), 30)
            except TimeoutError:
                timeouts += 1
                break
            rtts.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(0.1)  # 10 a second: within its own share (20/s)
    answered, closed = await asyncio.to_thread(results.get, True, seconds + 30)
    flooder.join(10)
    async with httpx.AsyncClient(timeout=30) as client:
        stats = (await client.get(f"{http_url}/api/monitoring/connections")).json()["message_log"]
    rtts.sort()
    return {
        "calm_trips": len(rtts),
        "p50": rtts[len(rtts) // 2] if rtts else float("nan"),
        "p99": rtts[int(len(rtts) * 0.99)] if rtts else float("nan"),
        "max": rtts[-1] if rtts else float("nan"),
        "timeouts": timeouts,
        "flooder_per_s": answered / seconds,
        "flooder_closed": closed,
        "log_dropped": stats["dropped"],
    }


def serve_and_run(extra: dict[str, str], seconds: float, pad: int) -> tuple[dict[str, Any], float]:
    workdir = Path(tempfile.mkdtemp(prefix="stekker-flood-"))
    http_port, ocpp_port = free_port(), free_port()
    env = {**os.environ, "STEKKER_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'flood.db'}",
           "STEKKER_HOST": "127.0.0.1", "STEKKER_HTTP_PORT": str(http_port),
           "STEKKER_OCPP_PORT": str(ocpp_port), "STEKKER_UNKNOWN_STATIONS": "accept",
           "STEKKER_LOG_LEVEL": "ERROR", "STEKKER_CONFIGURE_STATIONS_ON_BOOT": "false", **extra}  # fmt: skip
    server = subprocess.Popen([str(Path(sys.executable).parent / "stekker"), "serve"], env=env, cwd=workdir)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{http_port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        result = asyncio.run(
            run(f"ws://127.0.0.1:{ocpp_port}/ocpp", f"http://127.0.0.1:{http_port}", seconds, pad)
        )
        rss = psutil.Process(server.pid).memory_info().rss / 2**20
    finally:
        server.terminate()
        server.wait(10)
    return result, rss


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--pad", type=int, default=0, help="spaces added to each flood frame")
    args = parser.parse_args()
    rows = []
    for name, extra in (("without limits (baseline)", UNLIMITED), ("with the limits (defaults)", {})):
        r, rss = serve_and_run(extra, args.seconds, args.pad)
        rows.append(
            f"| {name} | {r['calm_trips']} | {r['p50']:.1f} / {r['p99']:.1f} / {r['max']:.1f} "
            f"| {r['timeouts']} "
            f"| {r['flooder_per_s']:.0f} | {r['flooder_closed']} | {r['log_dropped']} | {rss:.0f} |"
        )
    header = [
        f"Flood, {args.seconds:g} s, flood frames of {24 + args.pad} bytes, SQLite; {machine()}; "
        f"{datetime.now(UTC):%Y-%m-%d}",
        "",
        "| gateway | calm round trips | calm p50 / p99 / max ms | calm timeouts (30 s) | flooder answered/s "
        "| flooder connection | message log dropped | server RSS MiB |",
        "|---|---:|---:|---:|---:|---|---:|---:|",
    ]
    publish("flood", header, rows)


if __name__ == "__main__":
    main()
