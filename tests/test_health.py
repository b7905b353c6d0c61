"""Requirement 96: who is offline and since when, how often stations reconnect and why their
connections end, and whether connected stations miss heartbeats."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text, update

from stekker.app import Stekker
from stekker.db.engine import make_engine
from stekker.db.migrate import upgrade
from stekker.db.models import ChargingStation
from tests.observe import eventually
from tests.peers import raw_station
from tests.test_connection_health import _zombie_handshake
from tests.test_users_roles import add_user, bearer, make_admin


async def get(api: httpx.AsyncClient, path: str, **params: Any) -> dict[str, Any]:
    response = await api.get(path, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def health(api: httpx.AsyncClient, station_id: str, **params: Any) -> dict[str, Any]:
    return await get(api, f"/api/stations/{station_id}/connection", **params)


async def offline_list(api: httpx.AsyncClient, longer_than: float) -> dict[str, Any]:
    return await get(api, "/api/monitoring/offline", longer_than=longer_than)


async def events(api: httpx.AsyncClient, station_id: str) -> list[dict[str, Any]]:
    response = await api.get(f"/api/stations/{station_id}/events")
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


async def wait_offline(api: httpx.AsyncClient, station_id: str) -> None:
    async def offline() -> bool:
        return not (await health(api, station_id))["online"]

    await eventually(offline, timeout=5)


# ---- offline for longer than a threshold ----------------------------------------------------------


async def test_offline_list_after_the_threshold_longest_first(api: httpx.AsyncClient, ocpp_url: str) -> None:
    created = await api.post("/api/stations", json={"authentication": "none", "id": "NEVER"})
    assert created.status_code == 201
    async with raw_station(ocpp_url, "GONE1"):
        pass
    await wait_offline(api, "GONE1")
    async with raw_station(ocpp_url, "GONE2"):
        pass
    await wait_offline(api, "GONE2")
    async with raw_station(ocpp_url, "STAYS"):
        report = await offline_list(api, longer_than=60)
        assert [s["station_id"] for s in report["offline"]] == []  # not yet a minute
        assert [s["station_id"] for s in report["never_connected"]] == ["NEVER"]
        await asyncio.sleep(1.1)
        report = await offline_list(api, longer_than=1)
        assert [s["station_id"] for s in report["offline"]] == ["GONE1", "GONE2"]  # longest first
        gone1 = report["offline"][0]
        station = await health(api, "GONE1")
        assert gone1["offline_since"] == station["disconnected_at"] == station["offline_since"]
        assert gone1["offline_for_s"] >= 1 and gone1["last_seen"] is not None
        assert report["longer_than_s"] == 1
        assert (await offline_list(api, longer_than=3600))["offline"] == []
        assert (await health(api, "STAYS"))["offline_since"] is None


async def test_a_crashed_gateway_leaves_no_station_online(api: httpx.AsyncClient, server: Stekker) -> None:
    await api.post("/api/stations", json={"authentication": "none", "id": "CRASHED"})
    seen = datetime.now(UTC) - timedelta(hours=2)
    async with server.ctx.db() as db, db.begin():
        await db.execute(
            update(ChargingStation)
            .where(ChargingStation.id == "CRASHED")
            .values(online=True, connected_at=seen - timedelta(hours=1), last_seen=seen)
        )
    await server.claim.release()  # the first process is gone (a crash): its claim went with it
    restarted = Stekker(server.settings)
    await restarted.start()
    await restarted.stop()
    station = await health(api, "CRASHED")
    assert station["online"] is False
    assert datetime.fromisoformat(station["offline_since"]) == seen
    [spell] = station["connections"] or [None]
    [gone] = (await offline_list(api, longer_than=3600))["offline"]
    assert gone["station_id"] == "CRASHED" and datetime.fromisoformat(gone["offline_since"]) == seen
    [event] = [e for e in await events(api, "CRASHED") if e["kind"] == "disconnected"]
    assert event["detail"]["cause"] == "gateway_restart"
    assert spell is None  # there was no connected event: nothing to pair


# ---- reconnects and why connections end ---------------------------------------------------------


async def test_reconnects_are_counted_and_each_connection_explained(
    api: httpx.AsyncClient, ocpp_url: str
) -> None:
    for _ in range(3):
        async with raw_station(ocpp_url, "FLAP"):
            pass
        await wait_offline(api, "FLAP")
    async with raw_station(ocpp_url, "STEADY"):
        station = await health(api, "FLAP")
        # three connections: the first is not a reconnect
        assert station["reconnect_count"] == 2 and station["reconnects_24h"] == 2
        assert len(station["connections"]) == 3
        for spell in station["connections"]:
            assert spell["cause"] == "closed_by_station" and spell["code"] == 1000
            assert spell["protocol"] == "ocpp1.6" and spell["transport"] == "ws"
            assert spell["disconnected_at"] is not None and spell["duration_s"] >= 0
        starts = [spell["connected_at"] for spell in station["connections"]]
        assert starts == sorted(starts, reverse=True)  # newest first
        assert len((await health(api, "FLAP", limit=2))["connections"]) == 2

        steady = await health(api, "STEADY")
        assert steady["reconnects_24h"] == 0 and steady["online"] is True
        assert steady["reconnect_count"] == 0  # its first connection
        [now] = steady["connections"]
        assert now["disconnected_at"] is None and now["cause"] is None

        summary = await get(api, "/api/monitoring/connections", reconnects_above=1)
        assert (summary["stations"], summary["online"], summary["offline"]) == (2, 1, 1)
        assert summary["frequent_reconnects"] == [
            {"station_id": "FLAP", "online": False, "reconnects_24h": 2}
        ]
        summary = await get(api, "/api/monitoring/connections", reconnects_above=2)
        assert summary["frequent_reconnects"] == []
        assert summary["message_log"]["enabled"] is True


async def test_a_replaced_connection_is_explained(api: httpx.AsyncClient, ocpp_url: str) -> None:
    async with raw_station(ocpp_url, "TWICE") as first:
        async with raw_station(ocpp_url, "TWICE", boot=False) as second:
            await second.ok("Heartbeat", {})
            await asyncio.wait_for(first.ws.wait_closed(), 3)
            station = await health(api, "TWICE")
            assert station["online"] is True and station["reconnects_24h"] == 1
            current, replaced = station["connections"]
            assert current["disconnected_at"] is None
            assert replaced["cause"] == "replaced" and replaced["reason"] == "replaced by a new connection"


@pytest.mark.parametrize(
    "settings_overrides", [{"ws_ping_interval": 0.2, "ws_ping_timeout": 0.3, "ws_close_timeout": 0.3}]
)
async def test_a_ping_timeout_is_explained(api: httpx.AsyncClient, server: Stekker) -> None:
    _reader, writer = await _zombie_handshake(server.ocpp_port or 0, "ZOMBIE")
    try:

        async def ended() -> dict[str, Any] | None:
            spells = (await health(api, "ZOMBIE"))["connections"]
            return spells[0] if spells and spells[0]["disconnected_at"] else None

        spell = await eventually(ended, timeout=5)
        assert spell["cause"] == "ping_timeout" and spell["code"] == 1006
    finally:
        writer.close()


async def test_a_shutdown_is_explained(api: httpx.AsyncClient, server: Stekker) -> None:
    await server.claim.release()  # the fixture's process only reads the API from here on
    other = Stekker(server.settings)
    await other.start()
    try:
        async with raw_station(f"ws://127.0.0.1:{other.ocpp_port}/ocpp", "BYE") as station:
            await other.stop()
            await asyncio.wait_for(station.ws.wait_closed(), 3)
    finally:
        await other.stop()
    [spell] = (await health(api, "BYE"))["connections"]
    assert spell["cause"] == "server_shutdown"


# ---- missed heartbeats ----------------------------------------------------------------------------


class _Clock:
    """The server's clock, moved by the test: heartbeat gaps of minutes without waiting minutes."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


# a 60 s interval: the watch's own loop (every 15 s) never runs within the test, which checks
# by hand after moving the clock
@pytest.mark.parametrize("settings_overrides", [{"heartbeat_interval": 60, "last_seen_flush_interval": 0.1}])
async def test_missed_heartbeats_are_counted(api: httpx.AsyncClient, ocpp_url: str, server: Stekker) -> None:
    clock = _Clock()
    server.ctx.clock = clock
    watch = server.gateway.heartbeats
    async with raw_station(ocpp_url, "SILENT") as silent, raw_station(ocpp_url, "TALKER") as talker:
        await silent.ok("Heartbeat", {})
        silent_last = clock.now
        clock.advance(150)  # two and a half intervals
        await talker.ok("Heartbeat", {})  # never overdue
        await watch.check()

        station = await health(api, "SILENT")
        assert station["heartbeat_overdue"] and station["online"] is True, station
        assert station["missed_heartbeats"] >= 1
        assert datetime.fromisoformat(station["overdue_since"]) == silent_last + timedelta(seconds=120)
        summary = await get(api, "/api/monitoring/connections")
        assert [s["station_id"] for s in summary["heartbeat_overdue"]] == ["SILENT"]
        assert summary["heartbeat_overdue"][0]["missed_heartbeats"] >= 1
        assert "heartbeat_overdue" in [e["kind"] for e in await events(api, "SILENT")]

        clock.advance(100)  # another interval or so of silence, then the station speaks
        await silent.ok("Heartbeat", {})
        await watch.check()
        [missed] = [e for e in await events(api, "SILENT") if e["kind"] == "heartbeat_missed"]
        assert missed["detail"]["missed"] >= 2 and missed["detail"]["ended_by"] == "traffic"
        assert missed["detail"]["silent_s"] == 250

        async def talking() -> dict[str, Any] | None:  # once its last-seen time is written
            station = await health(api, "SILENT")
            return None if station["heartbeat_overdue"] else station

        station = await eventually(talking)
        assert station["missed_heartbeats"] == 0
        assert station["missed_heartbeats_24h"] == missed["detail"]["missed"]
        assert station["connections"][0]["missed_heartbeats"] == missed["detail"]["missed"]

        talker_health = await health(api, "TALKER")
        assert talker_health["missed_heartbeats_24h"] == 0
        assert "heartbeat_overdue" not in [e["kind"] for e in await events(api, "TALKER")]

        # silent again, then gone: the gap up to the disconnect is counted too
        clock.advance(150)
        await talker.ok("Heartbeat", {})
        await watch.check()
        assert (await health(api, "SILENT"))["heartbeat_overdue"] is True
    await wait_offline(api, "SILENT")
    await watch.check()
    gaps = [e for e in await events(api, "SILENT") if e["kind"] == "heartbeat_missed"]
    assert [g["detail"]["ended_by"] for g in gaps] == ["disconnect", "traffic"]
    station = await health(api, "SILENT")
    assert station["missed_heartbeats"] == 0  # offline is not "missing heartbeats"
    assert station["missed_heartbeats_24h"] == sum(g["detail"]["missed"] for g in gaps)
    assert station["connections"][0]["missed_heartbeats"] == station["missed_heartbeats_24h"]


# ---- bad input and roles --------------------------------------------------------------------------


async def test_hostile_parameters_are_4xx(api: httpx.AsyncClient) -> None:
    await api.post("/api/stations", json={"authentication": "none", "id": "HOST"})
    for path in (
        "/api/monitoring/offline?longer_than=-1",
        "/api/monitoring/offline?longer_than=abc",
        "/api/monitoring/offline?longer_than=1000000000000",
        "/api/monitoring/offline?longer_than=%27%20OR%201%3D1",
        "/api/monitoring/offline?limit=0",
        "/api/monitoring/offline?limit=10001",
        "/api/monitoring/connections?reconnects_above=-1",
        "/api/monitoring/connections?reconnects_above=many",
        "/api/monitoring/connections?limit=99999999999999999999",
        "/api/stations/HOST/connection?limit=0",
        "/api/stations/HOST/connection?limit=501",
        f"/api/stations/{'X' * 49}/connection",
        "/api/stations/A%00B/connection",
    ):
        response = await api.get(path)
        assert response.status_code == 422, (path, response.text)
        assert response.json()["detail"]
    for station_id in ("NOPE", "%27%3B%20DROP%20TABLE%20station_events%3B--"):
        response = await api.get(f"/api/stations/{station_id}/connection")
        assert response.status_code == 404, (station_id, response.text)
        assert "no station" in response.json()["detail"]
    assert (await api.get("/api/stations/..%2F..%2Fetc/connection")).status_code == 404  # no such route


async def test_every_reading_role_may_look(api: httpx.AsyncClient) -> None:
    root = await make_admin(api)
    await api.post("/api/stations", json={"authentication": "none", "id": "SEEN"}, headers=bearer(root))
    paths = [
        "/api/monitoring/offline",
        "/api/monitoring/connections",
        "/api/stations/SEEN/connection",
        "/api/stations/SEEN/messages",
    ]
    for role in ("read-only", "municipality", "helpdesk", "operator"):
        token = await add_user(api, root, role.replace("-", ""), role)
        for path in paths:
            response = await api.get(path, headers=bearer(token))
            assert response.status_code == 200, (role, path, response.text)
    for path in paths:
        assert (await api.get(path)).status_code == 401


async def test_upgrade_stops_counting_the_first_connection_as_a_reconnect(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    try:
        await upgrade(engine, "0016")
        async with engine.begin() as conn:
            for sid, count, connected in (("THRICE", 3, "2026-01-02"), ("NEVER", 0, None)):
                await conn.execute(
                    text(
                        "INSERT INTO charging_stations (id, registration_status, online, reconnect_count, "
                        "connected_at, created_at) VALUES (:id, 'Accepted', 0, :n, :at, '2026-01-01')"
                    ),
                    {"id": sid, "n": count, "at": connected},
                )
        await upgrade(engine)
        async with engine.begin() as conn:
            rows = dict((await conn.execute(text("SELECT id, reconnect_count FROM charging_stations"))).all())
        assert rows == {"THRICE": 2, "NEVER": 0}
    finally:
        await engine.dispose()
