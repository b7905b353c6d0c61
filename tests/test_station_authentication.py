"""Stations authenticate by default (security review, finding 5): a station needs a password or a
certificate unless the operator registers it explicitly, audited and visibly, without
authentication; one without credentials that is not marked so is refused at connect, so nobody
who merely knows its id can take its place."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text
from websockets.exceptions import InvalidStatus

from stekker.app import Stekker
from stekker.db.engine import make_engine
from stekker.db.migrate import upgrade
from stekker.db.models import AuditEntry, ChargingStation
from stekker.services import stations
from tests.peers import auth_header, raw_station
from tests.web.conftest import http_login

PASSWORD = "station-password-0001"


async def audit_entries(server: Stekker, station_id: str) -> list[tuple[str, str]]:
    async with server.ctx.db() as db:
        rows = await db.execute(
            select(AuditEntry.action, AuditEntry.actor)
            .where(AuditEntry.object_id == station_id)
            .order_by(AuditEntry.id)
        )
        return [(action, actor) for action, actor in rows]


async def refused_status(base_url: str, station_id: str, **connect_kw: Any) -> int:
    with pytest.raises(InvalidStatus) as refused:
        async with raw_station(base_url, station_id, boot=False, **connect_kw):
            pass
    return refused.value.response.status_code


async def test_a_station_needs_credentials_or_the_explicit_choice_of_none(
    api: httpx.AsyncClient, server: Stekker
) -> None:
    response = await api.post("/api/stations", json={"id": "BARE"})
    assert response.status_code == 422 and "a station needs credentials" in response.text, response.text
    assert (await api.get("/api/stations/BARE")).status_code == 404
    both = await api.post(
        "/api/stations", json={"id": "BOTH", "authentication": "none", "password": PASSWORD}
    )
    assert both.status_code == 422 and 'authentication \\"none\\" means no password' in both.text, both.text
    assert (await api.post("/api/stations", json={"id": "X", "authentication": "open"})).status_code == 422

    made = await api.post("/api/stations", json={"id": "OPEN", "authentication": "none"})
    assert made.status_code == 201, made.text
    assert made.json()["authentication"] == "none" and made.json()["security_profile"] == 0
    assert await audit_entries(server, "OPEN") == [
        ("station.registered", "operator"),
        ("station.authentication_none", "operator"),
    ]
    with_password = await api.post("/api/stations", json={"id": "PW", "password": PASSWORD})
    certified = await api.post("/api/stations", json={"id": "CERT", "security_profile": 3})
    assert with_password.json()["authentication"] == "password"
    assert certified.json()["authentication"] == "certificate"
    assert [a for a, _ in await audit_entries(server, "PW")] == ["station.registered"]

    # taking the password away needs the same explicit choice, and is audited the same way
    removed = await api.patch("/api/stations/PW", json={"password": None})
    assert removed.status_code == 422 and "a station needs credentials" in removed.text
    removed = await api.patch("/api/stations/PW", json={"password": None, "authentication": "none"})
    assert removed.status_code == 200 and removed.json()["authentication"] == "none", removed.text
    assert [a for a, _ in await audit_entries(server, "PW")][-1] == "station.authentication_none"
    # and giving it one again ends the risk
    restored = await api.patch("/api/stations/PW", json={"password": PASSWORD, "security_profile": None})
    assert restored.status_code == 200 and restored.json()["authentication"] == "password", restored.text


async def test_cli_station_add_needs_credentials_or_no_authentication(cli: Any, server: Stekker) -> None:
    refused = await cli("station", "add", "CLI-BARE")
    assert refused.exit_code != 0 and "a station needs credentials" in refused.output
    made = await cli("station", "add", "CLI-OPEN", "--no-authentication")
    assert made.exit_code == 0, made.output
    assert '"authentication": "none"' in made.output
    listed = await cli("station", "list")
    assert listed.exit_code == 0 and "CLI-OPEN" in listed.output and "none" in listed.output
    assert ("station.authentication_none", "operator") in await audit_entries(server, "CLI-OPEN")


async def test_an_impersonator_cannot_take_a_password_station(api: httpx.AsyncClient, ocpp_url: str) -> None:
    assert (await api.post("/api/stations", json={"id": "REAL", "password": PASSWORD})).status_code == 201
    async with raw_station(ocpp_url, "REAL", additional_headers=auth_header("REAL", PASSWORD)) as real:
        assert await refused_status(ocpp_url, "REAL") == 401
        assert await refused_status(ocpp_url, "REAL", additional_headers=auth_header("REAL", "x" * 20)) == 401
        # the real station was not kicked off
        assert (await real.ok("Heartbeat", {}))["currentTime"]
        [station] = (await api.get("/api/stations")).json()
        assert station["online"] is True and station["authentication"] == "password"


async def test_a_station_without_credentials_not_marked_none_is_refused(
    api: httpx.AsyncClient, server: Stekker, ocpp_url: str
) -> None:
    """What the old rule let in: a stored station with neither password nor profile."""
    async with server.ctx.db() as db:
        db.add(ChargingStation(id="LEGACY", created_at=server.ctx.now()))
        await db.commit()
    assert (await api.get("/api/stations/LEGACY")).json()["authentication"] == "missing"
    assert await refused_status(ocpp_url, "LEGACY") == 401
    [event] = (await api.get("/api/stations/LEGACY/events")).json()
    assert event["kind"] == "connection_refused" and "no credentials" in event["detail"]["reason"]

    # marked "none" explicitly, it connects, without credentials, at profile 0
    marked = await api.patch("/api/stations/LEGACY", json={"authentication": "none"})
    assert marked.status_code == 200 and marked.json()["authentication"] == "none", marked.text
    async with raw_station(ocpp_url, "LEGACY") as station:
        assert (await station.ok("Heartbeat", {}))["currentTime"]
    connected = [e for e in (await api.get("/api/stations/LEGACY/events")).json() if e["kind"] == "connected"]
    assert connected[0]["detail"]["security_profile"] == 0


async def test_unknown_stations_accepted_by_policy_are_registered_as_none(
    api: httpx.AsyncClient, ocpp_url: str
) -> None:
    # the test settings accept unknown stations (the demo/onboarding policy)
    for _ in range(2):  # and it may come back
        async with raw_station(ocpp_url, "NEWBIE") as station:
            assert (await station.ok("Heartbeat", {}))["currentTime"]
    shown = (await api.get("/api/stations/NEWBIE")).json()
    assert shown["authentication"] == "none" and shown["security_profile"] == 0


async def test_start_warns_of_stations_without_authentication_and_the_accept_policy(
    api: httpx.AsyncClient, server: Stekker, caplog: pytest.LogCaptureFixture
) -> None:
    for n in range(2):
        await api.post("/api/stations", json={"id": f"OPEN{n}", "authentication": "none"})
    await api.post("/api/stations", json={"id": "SAFE", "password": PASSWORD})
    with caplog.at_level(logging.WARNING, logger="stekker.services.stations"):
        assert await stations.warn_weak_admission(server.ctx) == 2
    messages = [r.getMessage() for r in caplog.records]
    assert any("2 station(s) are registered without authentication" in m for m in messages), messages
    assert any("STEKKER_UNKNOWN_STATIONS=accept" in m for m in messages), messages


async def test_the_console_shows_a_station_without_authentication_as_a_risk(
    api: httpx.AsyncClient, server: Stekker
) -> None:
    from stekker.db.models_users import Role
    from stekker.services import users

    await api.post("/api/stations", json={"id": "OPEN-C", "authentication": "none"})
    await api.post("/api/stations", json={"id": "SAFE-C", "password": PASSWORD})
    await users.create_user(server.ctx, "test", "root", "correct horse battery staple", Role.ADMIN)
    await users.create_user(server.ctx, "test", "reader", "correct horse battery staple", Role.READ_ONLY)
    async with httpx.AsyncClient(base_url=str(api.base_url), follow_redirects=True) as browser:
        assert (await http_login(browser, "reader")).status_code == 200
        listing = (await browser.get("/console/stations", params={"lang": "en"})).text
        rows = {
            sid: listing.split(f'data-station="{sid}"')[1].split("</tr>")[0] for sid in ("OPEN-C", "SAFE-C")
        }
        assert 'data-risk="authentication"' in rows["OPEN-C"] and "No authentication" in rows["OPEN-C"]
        assert 'data-risk="authentication"' not in rows["SAFE-C"]
        page = (await browser.get("/console/stations/OPEN-C")).text
        assert 'data-risk="authentication"' in page and "anyone who knows its id" in page
        safe = (await browser.get("/console/stations/SAFE-C")).text
        assert 'data-risk="authentication"' not in safe and "Password" in safe


async def test_upgrade_marks_stations_without_credentials_as_none(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    try:
        await upgrade(engine, "0013")
        async with engine.begin() as conn:
            for sid, password_hash, profile in (
                ("OLD-OPEN", None, None),
                ("OLD-PW", "x", None),
                ("OLD-3", None, 3),
            ):
                await conn.execute(
                    text(
                        "INSERT INTO charging_stations (id, password_hash, security_profile, "
                        "registration_status, online, reconnect_count, created_at) "
                        "VALUES (:id, :pw, :p, 'Accepted', 0, 0, '2026-01-01')"
                    ),
                    {"id": sid, "pw": password_hash, "p": profile},
                )
        await upgrade(engine)
        async with engine.begin() as conn:
            rows = dict(
                (await conn.execute(text("SELECT id, security_profile FROM charging_stations"))).all()
            )
        assert rows == {"OLD-OPEN": 0, "OLD-PW": None, "OLD-3": 3}
    finally:
        await engine.dispose()


async def test_serve_warns_at_start(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from stekker.services import inventory
    from tests.conftest import make_settings

    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path / 'stekker.db'}", unknown_stations="reject")
    first = Stekker(settings)
    await first.start()
    try:
        await inventory.register_station(
            first.ctx, "test", inventory.StationInput("OPEN-S", no_authentication=True)
        )
    finally:
        await first.stop()
    again = Stekker(settings)
    with caplog.at_level(logging.WARNING, logger="stekker.services.stations"):
        await again.start()
    try:
        messages = [r.getMessage() for r in caplog.records if r.name == "stekker.services.stations"]
        assert any("1 station(s) are registered without authentication" in m for m in messages), messages
        assert not any("STEKKER_UNKNOWN_STATIONS=accept" in m for m in messages)  # reject: no warning
    finally:
        await again.stop()
