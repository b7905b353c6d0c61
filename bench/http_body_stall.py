"""Does one huge HTTP request stall the stations? Heartbeat round trips while 20 MB bodies arrive.

    .venv/bin/python bench/http_body_stall.py [--seconds 10] [--rate 10] [--body-mb 20]
    .venv/bin/python bench/http_body_stall.py --source /path/to/an/older/checkout   # the same, old code

The OCPP gateway and the HTTP API share one event loop. This starts `stekker serve` (SQLite in a
temp dir) as a subprocess and, over loopback from this process, connects one OCPP 1.6 station
that sends a Heartbeat every 1/`--rate` s (one CALL outstanding at a time) and times each
CALL → CALLRESULT round trip. Two phases in the same run:

- **baseline**: heartbeats only, for `--seconds`;
- **big bodies**: the same heartbeats while another client posts, one after the other, a
  `--body-mb` MB JSON object of a million keys to `POST /api/auth/token` (no token needed), the
  review's finding: first with its Content-Length declared, then chunked, alternating. The client
  sends in 256 KiB writes and stops as soon as an answer comes back or the server hangs up.

Prints a markdown table (p50 / p99 / max of the heartbeat round trip per phase; the big
requests' answers, how many bytes were sent before the answer, how long each took) and writes
it to bench/results/http_body_stall.md. `--source DIR` runs the server from another checkout
(PYTHONPATH=DIR), for a before/after comparison on the same machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import statistics
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

WRITE = 256 * 1024


def huge_body(megabytes: float) -> bytes:
    """A JSON object of short keys, `megabytes` MB (20 MB: about a million keys)."""
    keys = int(megabytes * 1_000_000 / 19)
    return json.dumps({f"k{i:08d}": 12345 for i in range(keys)}).encode()


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def heartbeats(ocpp: str, rate: float, booted: asyncio.Event, samples: dict[str, list[float]]) -> None:
    """One 1.6 station: boots (then sets `booted`), then a Heartbeat every 1/rate s, for ever;
    each round trip in ms goes to the list of the phase that is current when it is answered
    (the last key of `samples`), so a stalled one counts where the stall happened."""
    async with websockets.connect(f"{ocpp}/BENCH-HB", subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]
        n = 0

        async def call(action: str, payload: dict[str, object]) -> float:
            nonlocal n
            n += 1
            start = time.perf_counter()
            await ws.send(json.dumps([2, f"m{n}", action, payload]))
            while True:
                frame = json.loads(await ws.recv())
                if frame[0] == 2:  # the server's own CALL: accept it
                    await ws.send(json.dumps([3, frame[1], {"status": "Accepted"}]))
                    continue
                if frame[1] == f"m{n}":
                    return (time.perf_counter() - start) * 1000

        await call("BootNotification", {"chargePointVendor": "Bench", "chargePointModel": "HB"})
        booted.set()
        interval = 1 / rate
        next_at = time.perf_counter()
        while True:
            rtt = await call("Heartbeat", {})
            samples[list(samples)[-1]].append(rtt)
            next_at = max(next_at + interval, time.perf_counter())  # after a stall: no burst
            await asyncio.sleep(next_at - time.perf_counter())


async def read_status(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    await reader.readexactly(length)  # the old code echoed the input: read it all, as a client would
    return int(head.split()[1])


async def big_request(port: int, body: bytes, chunked: bool) -> tuple[str, int, float]:
    """POST the body; (answer, bytes sent before it came, ms until it came)."""
    start = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(body)}"
    head = f"POST /api/auth/token HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n{framing}\r\n"
    writer.write(head.encode() + b"\r\n")
    answer = asyncio.create_task(read_status(reader))
    sent = 0
    with contextlib.suppress(ConnectionError):
        while sent < len(body) and not answer.done():
            piece = body[sent : sent + WRITE]
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            await writer.drain()
            sent += len(piece)
        if chunked and not answer.done():
            writer.write(b"0\r\n\r\n")
            await writer.drain()
    try:
        status = str(await asyncio.wait_for(answer, 120))
    except (asyncio.IncompleteReadError, ConnectionError, TimeoutError) as exc:
        status = f"closed ({type(exc).__name__})"
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()
    return status, sent, (time.perf_counter() - start) * 1000


def big_client(port: int, body: bytes, seconds: float, results: Any) -> None:
    """In its own process (so its work does not slow the station's client): big requests one
    after the other for `seconds`, alternating declared and chunked."""

    async def run() -> list[tuple[str, int, float]]:
        done: list[tuple[str, int, float]] = []
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            done.append(await big_request(port, body, chunked=len(done) % 2 == 1))
        return done

    results.put(asyncio.run(run()))


async def measure(http_port: int, ocpp: str, args: argparse.Namespace) -> list[str]:
    body = huge_body(args.body_mb)
    samples: dict[str, list[float]] = {"connecting": []}
    booted = asyncio.Event()
    station = asyncio.create_task(heartbeats(ocpp, args.rate, booted, samples))
    await asyncio.wait_for(booted.wait(), 30)
    rows: list[str] = []
    for phase in ("baseline: heartbeats only", "big bodies: heartbeats while 20 MB bodies arrive"):
        times: list[float] = []
        samples[phase] = times
        big: list[tuple[str, int, float]] = []
        if phase.startswith("big"):
            results: Any = multiprocessing.Queue()
            client = multiprocessing.Process(target=big_client, args=(http_port, body, args.seconds, results))
            client.start()
            big = await asyncio.to_thread(results.get)  # after the last one is answered
            await asyncio.to_thread(client.join)
            await asyncio.sleep(1 / args.rate)  # the heartbeat in flight is still this phase's
        else:
            await asyncio.sleep(args.seconds)
        answers = ", ".join(sorted({b[0] for b in big})) or "-"
        sent = f"{statistics.median(b[1] for b in big) / 1e6:.1f} MB" if big else "-"
        took = f"{statistics.median(b[2] for b in big):.0f} ms" if big else "-"
        rows.append(
            f"| {phase} | {len(times)} | {pct(times, 0.5):.1f} | {pct(times, 0.99):.1f} | {max(times):.1f} "
            f"| {len(big) or '-'} | {answers} | {sent} | {took} |"
        )
    station.cancel()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    parser.add_argument("--rate", type=float, default=10.0, help="heartbeats per second")
    parser.add_argument("--body-mb", type=float, default=20.0)
    parser.add_argument("--source", type=Path, help="run the server from this checkout instead")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="stekker-stall-"))
    http_port, ocpp_port = free_port(), free_port()
    env = {**os.environ, "STEKKER_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'stall.db'}",
           "STEKKER_HOST": "127.0.0.1", "STEKKER_HTTP_PORT": str(http_port),
           "STEKKER_OCPP_PORT": str(ocpp_port), "STEKKER_UNKNOWN_STATIONS": "accept",
           "STEKKER_LOG_LEVEL": "WARNING", "STEKKER_CONFIGURE_STATIONS_ON_BOOT": "false"}  # fmt: skip
    if args.source is not None:
        env["PYTHONPATH"] = str(args.source.resolve())
    command = [sys.executable, "-c", "from stekker.cli import app; app()", "serve"]
    server = subprocess.Popen(command, env=env, cwd=workdir)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{http_port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        rows = asyncio.run(measure(http_port, f"ws://127.0.0.1:{ocpp_port}/ocpp", args))
        rss = psutil.Process(server.pid).memory_info().rss / 2**20
    finally:
        server.terminate()
        server.wait(10)
    source = f"server from {args.source}" if args.source else "server from this checkout"
    header = [
        f"Heartbeat round trip, {args.rate:g}/s for {args.seconds:g} s per phase, {args.body_mb:g} MB "
        f"bodies; {source}; SQLite; {machine()}; {datetime.now(UTC):%Y-%m-%d}; "
        f"server RSS at the end {rss:.0f} MiB",
        "",
        "| phase | heartbeats | p50 ms | p99 ms | max ms | big requests | their answers | sent before "
        "the answer (median) | answered after (median) |",
        "|---|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    publish("http_body_stall", header, rows)


if __name__ == "__main__":
    main()
