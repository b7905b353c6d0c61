"""What the privacy policy costs an API answer (security review, finding 9): the same big JSON
answers read as an operator (card numbers as they are; the baseline, in the same run) and as the
municipality (every card number, also inside logged OCPP frames, replaced by its pseudonym on the
way out, `stekker.api.redaction`).

    .venv/bin/python bench/redaction.py [--rows 1000] [--repeat 15]

Starts `stekker serve` in this process on a fresh SQLite file, stores `--rows` finished sessions
(300 different cards) and `--rows` logged StartTransaction frames of one station, then times
`GET /api/sessions?limit=ROWS` and `GET /api/stations/B1/messages?limit=ROWS` over loopback
with httpx, `--repeat` times per role, and prints the median and the ratio municipality/operator.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import insert

from stekker.app import Stekker
from stekker.config import Settings
from stekker.db.models import ChargingSession, ChargingStation, OcppMessage
from stekker.db.models_users import Role
from stekker.services import users

PASSWORD = "bench-password-1234"
STATION = "B1"


async def seed(server: Stekker, rows: int) -> None:
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    sessions = [
        {
            "station_id": STATION,
            "evse_number": 1,
            "connector_number": 1,
            "transaction_id": str(n),
            "start_key": f"bench-{n}",
            "token_uid": f"04A1B2C3{n % 300:04d}",
            "auth_status": "Accepted",
            "status": "completed",
            "start_time": t0 + timedelta(hours=n),
            "stop_time": t0 + timedelta(hours=n, minutes=50),
            "meter_start_wh": 0,
            "meter_stop_wh": 7000,
            "energy_wh": 7000,
            "stop_reason": "Local",
        }
        for n in range(rows)
    ]
    frames = []
    for n in range(rows):
        payload = {"connectorId": 1, "idTag": f"04A1B2C3{n % 300:04d}", "meterStart": 0, "timestamp": "x"}
        text = json.dumps([2, str(n), "StartTransaction", payload])
        frames.append(
            {
                "station_id": STATION,
                "direction": "in",
                "message_type": 2,
                "message_id": str(n),
                "action": "StartTransaction",
                "frame": text,
                "size": len(text),
                "truncated": False,
                "occurred_at": t0 + timedelta(seconds=n),
            }
        )
    async with server.ctx.db() as db:
        db.add(ChargingStation(id=STATION, created_at=t0, security_profile=0))
        await db.flush()
        await db.execute(insert(ChargingSession), sessions)
        await db.execute(insert(OcppMessage), frames)
        await db.commit()
    await users.create_user(server.ctx, "bench", "admin", PASSWORD, Role.ADMIN)
    await users.create_user(server.ctx, "bench", "operator", PASSWORD, Role.OPERATOR)
    await users.create_user(server.ctx, "bench", "municipality", PASSWORD, Role.MUNICIPALITY)


async def timed(
    client: httpx.AsyncClient, path: str, params: dict[str, str], token: str, repeat: int
) -> float:
    headers = {"Authorization": f"Bearer {token}"}
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        response = await client.get(path, params=params, headers=headers)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, response.text
    return statistics.median(times)


async def main(rows: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            database_url=f"sqlite+aiosqlite:///{Path(tmp) / 'stekker.db'}",
            host="127.0.0.1",
            ocpp_port=0,
            http_port=0,
            log_level="WARNING",
        )
        server = Stekker(settings)
        await server.start()
        try:
            await seed(server, rows)
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{server.http_port}", timeout=60
            ) as client:
                tokens = {}
                for name in ("operator", "municipality"):
                    login = await client.post(
                        "/api/auth/token", json={"username": name, "password": PASSWORD}
                    )
                    tokens[name] = login.json()["token"]
                machine = f"{platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}"
                print(f"machine: {machine}")
                print(f"| answer ({rows} rows) | operator ms (p50) | municipality ms (p50) | ratio |")
                print("|---|---|---|---|")
                for label, path in (
                    ("GET /api/sessions", "/api/sessions"),
                    ("GET .../messages", f"/api/stations/{STATION}/messages"),
                ):
                    params = {"limit": str(rows)}
                    await timed(client, path, params, tokens["operator"], 2)  # warm up
                    await timed(client, path, params, tokens["municipality"], 2)
                    op = await timed(client, path, params, tokens["operator"], repeat)
                    mu = await timed(client, path, params, tokens["municipality"], repeat)
                    print(f"| {label} | {op:.1f} | {mu:.1f} | {mu / op:.2f} |")
        finally:
            await server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    asyncio.run(main(args.rows, args.repeat))
