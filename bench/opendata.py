"""Open-data feeds for a 10,000-EVSE fleet: request latency from the cache, and the delay from a
station's StatusNotification to the feed and the live stream.

    .venv/bin/python bench/opendata.py [--locations 2500] [--evses 4] [--requests 30] [--changes 40]

It builds a SQLite database with `--locations` locations of one station with `--evses` EVSEs
each (one connector per EVSE, an ad-hoc tariff for all), starts `stekker serve` on it as a
subprocess and measures from this process over loopback:

- every feed, warm (nothing changed since the last request) and right after a status change
  (the cache re-renders), plain and gzip, and a 304 with If-None-Match;
- the baseline in the same go: the authenticated OCPI 2.2.1 locations module, which renders
  from the database on every request (one page of 100, as a partner pages);
- a simulated OCPP 1.6 station sends `--changes` StatusNotifications; for each, the time
  until the SSE stream delivers it and until GET of the location shows it.

Prints a markdown table and writes it to bench/results/opendata.md.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psutil
import websockets

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT))

FEEDS = (
    ("OCPI locations, page of 100", "/opendata/ocpi/locations?limit=100"),
    ("OCPI locations, page of 1000", "/opendata/ocpi/locations?limit=1000"),
    ("OCPI dump (all, gzip file)", "/opendata/ocpi/dump.json.gz"),
    ("GeoJSON, all", "/opendata/geojson"),
    ("GeoJSON, bbox of a town", "/opendata/geojson?bbox=5.0,52.0,5.2,52.2"),
    ("DATEX II table, JSON", "/opendata/datex2/table.json"),
    ("DATEX II table, XML", "/opendata/datex2/table.xml"),
    ("DATEX II status, JSON", "/opendata/datex2/status.json"),
    ("DATEX II status, XML", "/opendata/datex2/status.xml"),
)
PARTNER_TOKEN = "bench-partner-token"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = psutil.virtual_memory().total / 2**30
    return f"{os.cpu_count()} cores, {cpu}, {memory:.0f} GiB RAM, Python {platform.python_version()}"


async def build_fleet(url: str, locations: int, evses: int) -> None:
    from stekker.bus import InProcessBus
    from stekker.config import Settings
    from stekker.db.engine import make_engine, make_session_factory
    from stekker.db.migrate import upgrade
    from stekker.db.models import ChargingStation, Connector, Evse, Location
    from stekker.db.models_tariffs import TariffRecord, TariffVersion
    from stekker.services.context import ServiceContext
    from stekker.services.ocpi_partners import add_registered_partner

    engine = make_engine(url)
    await upgrade(engine)
    factory = make_session_factory(engine)
    now = datetime.now(UTC)
    async with factory() as db:
        for n in range(locations):
            # spread over the Netherlands: 50.8-53.4 N, 3.4-7.2 E
            location = Location(
                name=f"Laadplein {n}", address=f"Straat {n}", city="Utrecht", postal_code="3511 AA",
                latitude=Decimal("50.8") + Decimal(n % 260) / 100,
                longitude=Decimal("3.4") + Decimal(n % 380) / 100,
            )  # fmt: skip
            station = ChargingStation(id=f"BENCH-{n:05d}", location=location, vendor="Bench", model="B1")
            for e in range(1, evses + 1):
                evse = Evse(evse_number=e, evse_id=f"NL*STK*EB{n:05d}*{e}")
                evse.connectors = [Connector(connector_number=1, status="Available", status_at=now)]
                station.evses.append(evse)
            db.add(location)
            db.add(station)
        record = TariffRecord(code="ADHOC", name="Ad hoc", currency="EUR", created_by="bench")
        db.add(record)
        await db.flush()
        db.add(
            TariffVersion(
                tariff_id=record.id, version=1, status="active", applies_to=[{"all": True}], audience="adhoc",
                parties=[], energy_suppliers=[], effective_from=now - timedelta(days=1), created_by="bench",
                content={"elements": [{"price_components": [{"type": "ENERGY", "price": 0.35, "vat": 21.0,
                                                              "step_size": 1}]}]},
            )
        )  # fmt: skip
        await db.commit()
    ctx = ServiceContext(Settings(database_url=url), factory, InProcessBus())
    await add_registered_partner(
        ctx, name="bench eMSP", country_code="NL", party_id="BEN", role="EMSP", token=PARTNER_TOKEN
    )
    await engine.dispose()


def publish(name: str, header: list[str], rows: list[str]) -> None:
    """Print a result table and keep it as bench/results/{name}.md (the other benches use it too)."""
    table = "\n".join(header + rows)
    print(table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.md").write_text(table + "\n")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def timed(n: int, request: Callable[[], Awaitable[httpx.Response]]) -> tuple[list[float], int, int]:
    """Latencies in ms of n requests; the last status and body size."""
    times: list[float] = []
    status = size = 0
    for _ in range(n):
        start = time.perf_counter()
        response = await request()
        times.append((time.perf_counter() - start) * 1000)
        status, size = response.status_code, response.num_bytes_downloaded
    return times, status, size


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Station:
    """A bare OCPP 1.6 station: sends StatusNotifications, answers whatever the server asks."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.replies: asyncio.Queue[list[Any]] = asyncio.Queue()
        self.reader = asyncio.create_task(self._read())
        self.n = 0

    async def _read(self) -> None:
        async for message in self.ws:
            frame = json.loads(message)
            if frame[0] == 2:
                answer = {"listVersion": 0} if frame[2] == "GetLocalListVersion" else {"status": "Accepted"}
                await self.ws.send(json.dumps([3, frame[1], answer]))
            else:
                await self.replies.put(frame)

    async def call(self, action: str, payload: dict[str, Any]) -> None:
        self.n += 1
        await self.ws.send(json.dumps([2, f"m{self.n}", action, payload]))
        reply = await self.replies.get()
        assert reply[0] == 3, reply

    async def status(self, connector: int, status: str) -> None:
        await self.call(
            "StatusNotification", {"connectorId": connector, "errorCode": "NoError", "status": status}
        )


async def measure(base: str, ocpp: str, args: argparse.Namespace) -> list[str]:
    rows: list[str] = []
    headers_gzip = {"Accept-Encoding": "gzip"}
    # plain unless asked: httpx would otherwise ask for gzip on every request
    async with httpx.AsyncClient(
        base_url=base, timeout=120, headers={"Accept-Encoding": "identity"}
    ) as client:
        start = time.perf_counter()
        first = await client.get("/opendata/geojson")
        cold = (time.perf_counter() - start) * 1000
        assert first.status_code == 200, first.text
        rows.append(f"| first request (builds the cache) | {cold:.0f} | | | |")

        async with websockets.connect(f"{ocpp}/BENCH-00000", subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]
            station = Station(ws)
            await station.call("BootNotification", {"chargePointVendor": "Bench", "chargePointModel": "B1"})
            await asyncio.sleep(1.0)
            flips = iter(range(1_000_000))

            async def change() -> None:
                n = next(flips)
                await station.status(1, "Charging" if n % 2 == 0 else "Available")
                await asyncio.sleep(0.3)  # the cache applies it

            for label, path in FEEDS:
                probe = await client.get(path)
                if probe.status_code == 404:
                    rows.append(f"| {label} | not served | | | |")
                    continue
                warm, _, size = await timed(args.requests, lambda path=path: client.get(path))  # type: ignore[misc]
                zipped, _, zsize = await timed(
                    args.requests,
                    lambda path=path: client.get(path, headers=headers_gzip),  # type: ignore[misc]
                )
                etag = probe.headers.get("ETag", "")
                not_modified, code, _ = await timed(
                    args.requests,
                    lambda path=path, etag=etag: client.get(path, headers={"If-None-Match": etag}),  # type: ignore[misc]
                )
                after: list[float] = []
                for _ in range(max(3, args.requests // 5)):
                    await change()
                    start = time.perf_counter()
                    await client.get(path)
                    after.append((time.perf_counter() - start) * 1000)
                rows.append(
                    f"| {label} | {p(warm, 0.5):.1f} / {p(warm, 0.95):.1f} ({size / 1e6:.1f} MB) | "
                    f"{p(zipped, 0.5):.1f} ({zsize / 1e6:.2f} MB) | {p(not_modified, 0.5):.1f} ({code}) | "
                    f"{p(after, 0.5):.0f} / {max(after):.0f} |"
                )

            auth = {"Authorization": "Token " + base64.b64encode(PARTNER_TOKEN.encode()).decode()}
            base_times, code, size = await timed(
                max(5, args.requests // 3),
                lambda: client.get("/ocpi/2.2.1/locations?limit=100", headers=auth),
            )
            assert code == 200, code
            rows.append(
                f"| **baseline**: OCPI 2.2.1 module, page of 100, rendered from the database | "
                f"{p(base_times, 0.5):.0f} / {p(base_times, 0.95):.0f} ({size / 1e6:.2f} MB) | | | |"
            )
            ratio = p(base_times, 0.5) / max(0.001, _warm_page(rows))
            rows.append(f"| ratio baseline / open-data page of 100 (p50) | {ratio:.0f}x | | | |")

            stream_delays, feed_delays = await delays(client, station, args.changes)
            rows.append("")
            rows.append("| StatusNotification answered → | p50 ms | p95 ms | max ms |")
            rows.append("|---|---:|---:|---:|")
            for label, values in (
                ("event on the SSE stream", stream_delays),
                ("GET of the location shows it", feed_delays),
            ):
                rows.append(f"| {label} | {p(values, 0.5):.0f} | {p(values, 0.95):.0f} | {max(values):.0f} |")
    return rows


def _warm_page(rows: list[str]) -> float:
    line = next(r for r in rows if r.startswith("| OCPI locations, page of 100 |"))
    return float(line.split("|")[2].split("/")[0])


async def delays(
    client: httpx.AsyncClient, station: Station, changes: int
) -> tuple[list[float], list[float]]:
    location = (await client.get("/opendata/ocpi/locations?limit=1")).json()["data"][0]["id"]
    stream_delays: list[float] = []
    feed_delays: list[float] = []
    async with httpx.AsyncClient(base_url=str(client.base_url), timeout=60) as listener:
        async with listener.stream("GET", "/opendata/stream?types=status") as stream:
            lines = stream.aiter_lines()
            for n in range(changes):
                wanted = "CHARGING" if n % 2 == 0 else "AVAILABLE"
                await station.status(2, "Charging" if n % 2 == 0 else "Available")
                answered = time.perf_counter()
                # the feed, polled every 5 ms, and the stream, read concurrently
                poll = asyncio.create_task(_poll(client, location, wanted))
                async for line in lines:
                    if line.startswith("data:") and f'"status":"{wanted}"' in line and "EB00000*2" in line:
                        stream_delays.append((time.perf_counter() - answered) * 1000)
                        break
                feed_delays.append((await poll - answered) * 1000)
    return stream_delays, feed_delays


async def _poll(client: httpx.AsyncClient, location: str, wanted: str) -> float:
    while True:
        body = (await client.get(f"/opendata/ocpi/locations/{location}")).json()["data"]
        if body["evses"][1]["status"] == wanted:
            return time.perf_counter()
        await asyncio.sleep(0.005)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--locations", type=int, default=2500)
    parser.add_argument("--evses", type=int, default=4)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--changes", type=int, default=40)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="stekker-opendata-"))
    url = f"sqlite+aiosqlite:///{workdir / 'fleet.db'}"
    started = time.perf_counter()
    asyncio.run(build_fleet(url, args.locations, args.evses))
    print(f"fleet of {args.locations * args.evses} EVSEs built in {time.perf_counter() - started:.0f} s")
    http_port, ocpp_port = free_port(), free_port()
    env = {**os.environ, "STEKKER_DATABASE_URL": url, "STEKKER_HOST": "127.0.0.1",
           "STEKKER_HTTP_PORT": str(http_port), "STEKKER_OCPP_PORT": str(ocpp_port),
           "STEKKER_UNKNOWN_STATIONS": "accept", "STEKKER_LOG_LEVEL": "WARNING",
           "STEKKER_CONFIGURE_STATIONS_ON_BOOT": "false", "STEKKER_OPENDATA_BURST": "1000000",
           "STEKKER_OPENDATA_REQUESTS_PER_MINUTE": "1000000"}  # fmt: skip
    server = subprocess.Popen([str(Path(sys.executable).parent / "stekker"), "serve"], env=env, cwd=workdir)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{http_port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        rows = asyncio.run(measure(f"http://127.0.0.1:{http_port}", f"ws://127.0.0.1:{ocpp_port}/ocpp", args))
        rss = psutil.Process(server.pid).memory_info().rss / 2**20
    finally:
        server.terminate()
        server.wait(10)
    header = [
        f"Open data, {args.locations} locations x {args.evses} EVSEs = {args.locations * args.evses} EVSEs, "
        f"SQLite; {machine()}; {datetime.now(UTC):%Y-%m-%d}; server RSS at the end {rss:.0f} MiB",
        "",
        "| request | warm p50 / p95 ms (body) | gzip p50 ms (body) | 304 p50 ms "
        "| after a change p50 / max ms |",
        "|---|---:|---:|---:|---:|",
    ]
    publish("opendata", header, rows)


if __name__ == "__main__":
    main()
