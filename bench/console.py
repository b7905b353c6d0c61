"""The web console with 10,000 stations: how long its pages take, against the operator API's
station list in the same go.

    .venv/bin/python bench/console.py [--stations 10000] [--requests 20]

It builds a SQLite database of `--stations` stations (one location and one EVSE each, the
fleet of bench/opendata.py), starts `stekker serve` on it, logs in to the console as an admin
over HTTP (login form, CSRF cookie, session cookie) and times from this process:

- the stations list: page 1, a page far down (by key), a search, a status filter, the htmx
  fragment a live refresh fetches, and a station's page;
- the dashboard;
- the baseline: `GET /api/stations`, the operator API's list of every station (JSON).

Prints a markdown table and writes it to bench/results/console.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psutil

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

from opendata import build_fleet, free_port, machine, p  # noqa: E402

PASSWORD = "bench-password-1234"


async def add_admin(url: str) -> str:
    """The console's user, and an API token of it for the baseline."""
    from stekker.bus import InProcessBus
    from stekker.config import Settings
    from stekker.db.engine import make_engine, make_session_factory
    from stekker.db.models_users import Role
    from stekker.services import users
    from stekker.services.context import ServiceContext

    engine = make_engine(url)
    ctx = ServiceContext(Settings(database_url=url), make_session_factory(engine), InProcessBus())
    await users.create_user(ctx, "bench", "bench", PASSWORD, Role.ADMIN)
    _token, secret = await users.create_token(ctx, "bench", "bench", "bench", None)
    await engine.dispose()
    return secret


async def log_in(client: httpx.AsyncClient) -> None:
    form = await client.get("/console/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token is not None, form.text[:500]
    done = await client.post(
        "/console/login", data={"csrf_token": token.group(1), "username": "bench", "password": PASSWORD}
    )
    assert done.status_code in (200, 303), done.text[:500]
    assert "stekker_session" in client.cookies, "no session cookie after login"


async def measure(base: str, requests: int, stations: int, api_token: str) -> list[str]:
    rows: list[str] = []
    async with httpx.AsyncClient(base_url=base, timeout=120, follow_redirects=True) as client:
        await log_in(client)
        far = f"BENCH-{stations * 3 // 4:05d}"
        pages = (
            ("stations list, page 1", "/console/stations", {}),
            ("stations list, a page 3/4 down (by key)", "/console/stations", {"after": far}),
            ("stations list, search '0042'", "/console/stations", {"q": "0042"}),
            ("stations list, offline only", "/console/stations", {"status": "offline"}),
            ("stations list, live refresh (htmx fragment)", "/console/stations", {"hx": "1"}),
            ("a station's page", f"/console/stations/{far}", {}),
            ("dashboard", "/console/", {}),
        )
        for label, path, params in pages:
            headers = {"HX-Request": "true"} if params.pop("hx", None) else {}
            times: list[float] = []
            size = 0
            for _ in range(requests):
                start = time.perf_counter()
                response = await client.get(path, params=params, headers=headers)
                times.append((time.perf_counter() - start) * 1000)
                assert response.status_code == 200, (path, response.status_code, response.text[:300])
                size = len(response.content)
            rows.append(f"| {label} | {p(times, 0.5):.0f} | {p(times, 0.95):.0f} | {size / 1000:.0f} kB |")
        times = []
        for _ in range(max(3, requests // 4)):
            start = time.perf_counter()
            response = await client.get("/api/stations", headers={"Authorization": f"Bearer {api_token}"})
            times.append((time.perf_counter() - start) * 1000)
        rows.append(
            f"| **baseline**: `GET /api/stations` (API, every station, JSON; HTTP {response.status_code}) | "
            f"{p(times, 0.5):.0f} | {p(times, 0.95):.0f} | {len(response.content) / 1000:.0f} kB |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stations", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="stekker-console-"))
    url = f"sqlite+aiosqlite:///{workdir / 'fleet.db'}"
    asyncio.run(build_fleet(url, args.stations, 1))
    api_token = asyncio.run(add_admin(url))
    http_port, ocpp_port = free_port(), free_port()
    env = {**os.environ, "STEKKER_DATABASE_URL": url, "STEKKER_HOST": "127.0.0.1",
           "STEKKER_HTTP_PORT": str(http_port), "STEKKER_OCPP_PORT": str(ocpp_port),
           "STEKKER_LOG_LEVEL": "WARNING"}  # fmt: skip
    server = subprocess.Popen([str(Path(sys.executable).parent / "stekker"), "serve"], env=env, cwd=workdir)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{http_port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        rows = asyncio.run(measure(f"http://127.0.0.1:{http_port}", args.requests, args.stations, api_token))
        rss = psutil.Process(server.pid).memory_info().rss / 2**20
    finally:
        server.terminate()
        server.wait(10)
    table = "\n".join(
        [
            f"Console, {args.stations} stations (one EVSE each), SQLite; {machine()}; "
            f"{datetime.now(UTC):%Y-%m-%d}; server RSS at the end {rss:.0f} MiB",
            "",
            "| page | p50 ms | p95 ms | body |",
            "|---|---:|---:|---:|",
            *rows,
        ]
    )
    print(table)
    (BENCH / "results").mkdir(exist_ok=True)
    (BENCH / "results" / "console.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
