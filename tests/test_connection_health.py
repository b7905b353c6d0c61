"""Requirement 96: a station that stops answering (a zombie socket) is seen as offline."""

from __future__ import annotations

import asyncio
import base64
import os
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import update

from stekker.app import Stekker
from stekker.db.models import ChargingStation
from tests.peers import raw_station
from tests.test_central_authorization import eventually


async def _zombie_handshake(port: int, station_id: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Open a WebSocket by hand and then never read again: a station behind a dead modem."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET /ocpp/{station_id} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Protocol: ocpp1.6\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    status = await reader.readuntil(b"\r\n\r\n")
    assert status.startswith(b"HTTP/1.1 101"), status
    return reader, writer


@pytest.mark.parametrize(
    "settings_overrides", [{"ws_ping_interval": 0.2, "ws_ping_timeout": 0.3, "ws_close_timeout": 0.3}]
)
async def test_silent_socket_is_closed_and_station_goes_offline(
    api: httpx.AsyncClient, server: object
) -> None:
    port = server.ocpp_port  # type: ignore[attr-defined]
    _reader, writer = await _zombie_handshake(port, "ZOMBIE")

    async def online() -> bool:
        return bool((await api.get("/api/stations/ZOMBIE")).json()["online"])

    await eventually(online, timeout=2)

    async def offline() -> bool:
        return not await online()

    await eventually(offline, timeout=3)  # no pong within ping_timeout: the server gave up on it
    events = [e["kind"] for e in (await api.get("/api/stations/ZOMBIE/events")).json()]
    assert events[:2] == ["disconnected", "connected"]
    writer.close()


async def test_missed_heartbeats_are_visible(api: httpx.AsyncClient, ocpp_url: str, server: Stekker) -> None:
    """A socket that stays open while the station says nothing shows as overdue."""
    async with raw_station(ocpp_url, "QUIET") as st:
        await asyncio.sleep(0.5)  # the boot's last_seen is written (flush every 0.2 s in tests)
        station = (await api.get("/api/stations/QUIET")).json()
        assert station["online"] and not station["heartbeat_overdue"]
        assert station["seconds_since_seen"] is not None and station["seconds_since_seen"] < 5
        silent_since = datetime.now(UTC) - timedelta(seconds=3 * server.settings.heartbeat_interval)
        async with server.ctx.db() as db, db.begin():
            await db.execute(
                update(ChargingStation).where(ChargingStation.id == "QUIET").values(last_seen=silent_since)
            )
        station = (await api.get("/api/stations/QUIET")).json()
        assert station["heartbeat_overdue"] and station["seconds_since_seen"] >= 900

        await st.ok("Heartbeat", {})

        async def healthy() -> bool:
            return not (await api.get("/api/stations/QUIET")).json()["heartbeat_overdue"]

        await eventually(healthy, timeout=3)

    async def offline_not_overdue() -> bool:  # offline is a different state from "overdue"
        station = (await api.get("/api/stations/QUIET")).json()
        return not station["online"] and not station["heartbeat_overdue"]

    await eventually(offline_not_overdue, timeout=3)


async def test_restart_clears_online_flags_left_by_a_crash(api: httpx.AsyncClient, server: Stekker) -> None:
    await api.post("/api/stations", json={"authentication": "none", "id": "CRASHED"})
    async with server.ctx.db() as db, db.begin():
        await db.execute(update(ChargingStation).where(ChargingStation.id == "CRASHED").values(online=True))
    await server.claim.release()  # the first process is gone (a crash): its claim went with it
    restarted = Stekker(server.settings)
    await restarted.start()
    try:
        async with restarted.ctx.db() as db:
            station = await db.get(ChargingStation, "CRASHED")
            assert station is not None and station.online is False
    finally:
        await restarted.stop()
