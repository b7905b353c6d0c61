"""Diagnostics and logs (requirement 51): a station is asked for its diagnostics, uploads the
file to our own HTTP server, and the operator or the municipality downloads it; plus every way
that goes wrong (no file, two files, a huge file, a wrong URL, a refusing or absent station)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.app import Stekker
from stekker.db.models import AuditEntry, StationGroup, StationGroupMember
from stekker.db.models_diagnostics import DiagnosticsRequest
from stekker.sim import SimulatedStation, SimulatedStation201, uploads
from stekker.storage import FileExists, FileMissing, FileTooLarge, LocalDiskStorage, safe_file_name
from tests.observe import eventually
from tests.peers import RawStation, raw_station

PAYLOAD = os.urandom(50_000) + b"\x00\r\n--not-a-boundary\r\n" + os.urandom(30_000)


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """Files in the test's own directory; a test may add settings with indirect parametrisation."""
    extra: dict[str, Any] = getattr(request, "param", {})
    return {"files_dir": tmp_path / "files", "call_timeout": 1.0, **extra}


def files_in(server: Stekker) -> list[Path]:
    root = server.settings.storage_directory
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def stray_files(directory: Path) -> list[Path]:
    return [*directory.glob("*.sh"), *directory.glob("*.txt"), *directory.glob("*.ini")]


@contextlib.asynccontextmanager
async def running(station: SimulatedStation | SimulatedStation201) -> AsyncIterator[None]:
    task = asyncio.create_task(station.run())
    try:
        await station.wait_online(timeout=10)
        yield
    finally:
        await station.close()
        await asyncio.wait_for(task, 5)


async def request_one(api: httpx.AsyncClient, station_id: str, **body: Any) -> dict[str, Any]:
    response = await api.post("/api/diagnostics", json={"station_ids": [station_id], **body})
    assert response.status_code == 201, response.text
    rows: list[dict[str, Any]] = response.json()
    assert len(rows) == 1
    return rows[0]


async def state_of(api: httpx.AsyncClient, request_id: int) -> dict[str, Any]:
    response = await api.get(f"/api/diagnostics/{request_id}")
    assert response.status_code == 200, response.text
    row: dict[str, Any] = response.json()
    return row


async def station_said(api: httpx.AsyncClient, request_id: int, status: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        row = await state_of(api, request_id)
        return row if row["station_status"] == status else None

    row: dict[str, Any] = await eventually(check)
    return row


async def in_state(api: httpx.AsyncClient, request_id: int, state: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        row = await state_of(api, request_id)
        return row if row["state"] == state else None

    row: dict[str, Any] = await eventually(check)
    return row


@contextlib.asynccontextmanager
async def accepting_station(ocpp_url: str, station_id: str) -> AsyncIterator[RawStation]:
    async with raw_station(ocpp_url, station_id) as station:
        station.answers["GetDiagnostics"] = {"fileName": "station.log"}
        yield station


def location_of(station: RawStation) -> str:
    """The upload URL the station was given in its last GetDiagnostics / GetLog."""
    frame = [f for f in station.server_calls if f[2] in ("GetDiagnostics", "GetLog")][-1]
    payload = frame[3]
    location: str = payload["location"] if frame[2] == "GetDiagnostics" else payload["log"]["remoteLocation"]
    return location


# ---- end to end with the simulated stations ------------------------------------------------------


async def test_a_16_station_uploads_and_the_file_is_downloaded(
    api: httpx.AsyncClient, ocpp_url: str, server: Stekker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(uploads, "generate_log", lambda station_id, kind, lines=40: PAYLOAD)
    station = SimulatedStation("DIAG16", ocpp_url, reboot_delay=0.1)
    async with running(station):
        row = await request_one(api, "DIAG16", start="2026-11-01T00:00:00+01:00", stop="2026-11-02T00:00:00Z")
        # the station may already be uploading when its answer is recorded
        assert row["state"] in ("accepted", "uploading", "uploaded"), row
        assert row["file_name"].startswith("diagnostics-DIAG16-")
        assert row["start"].startswith("2026-10-31T23:00:00")
        await in_state(api, row["id"], "uploaded")
        done = await station_said(api, row["id"], "Uploaded")
    assert done["file_size"] == len(PAYLOAD)
    assert done["file_sha256"] == hashlib.sha256(PAYLOAD).hexdigest()
    assert done["content_type"] == "text/plain"  # the multipart part's type
    assert done["download"] == f"/api/diagnostics/{row['id']}/file"

    download = await api.get(done["download"])
    assert download.status_code == 200
    assert download.content == PAYLOAD
    assert download.headers["content-type"] == "application/octet-stream"
    assert done["file_name"] in download.headers["content-disposition"]
    assert [p.name for p in files_in(server)] == [done["file_name"]]

    async with server.ctx.db() as db:
        actions = list(
            (
                await db.execute(select(AuditEntry.action).where(AuditEntry.action.like("diagnostics.%")))
            ).scalars()
        )
    assert sorted(actions) == sorted(
        [
            "diagnostics.requested",
            "diagnostics.sent",
            "diagnostics.file.received",
            "diagnostics.file.downloaded",
        ]
    )


async def test_a_201_station_uploads_its_security_log(
    api: httpx.AsyncClient, ocpp_url: str, server: Stekker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(uploads, "generate_log", lambda station_id, kind, lines=40: PAYLOAD[:1000])
    station = SimulatedStation201("DIAG201", ocpp_url, progress_delay=0.01, reboot_delay=0.1)
    async with running(station):
        row = await request_one(api, "DIAG201", log_type="SecurityLog", start="2026-11-01T00:00:00")
        assert row["state"] in ("accepted", "uploading", "uploaded") and row["log_type"] == "SecurityLog"
        assert row["file_name"].startswith("SecurityLog-DIAG201-")
        await in_state(api, row["id"], "uploaded")
        done = await station_said(api, row["id"], "Uploaded")
    download = await api.get(f"/api/diagnostics/{row['id']}/file")
    assert download.status_code == 200 and download.content == PAYLOAD[:1000]
    assert done["file_name"] == row["file_name"]  # PUT to the location + the station's file name
    listed = await api.get("/api/diagnostics", params={"station_id": "DIAG201", "state": "uploaded"})
    assert [r["id"] for r in listed.json()] == [row["id"]]
    assert (await api.get("/api/diagnostics", params={"state": "expired"})).json() == []


async def test_a_selection_gets_one_request_per_station(
    api: httpx.AsyncClient, ocpp_url: str, server: Stekker
) -> None:
    for station_id in ("GRP1", "GRP2", "GRP3", "OTHER"):
        assert (
            await api.post("/api/stations", json={"authentication": "none", "id": station_id})
        ).status_code == 201

    async def make_group(db: AsyncSession) -> None:
        group = StationGroup(name="district-7")
        db.add(group)
        await db.flush()
        db.add_all(StationGroupMember(group_id=group.id, station_id=s) for s in ("GRP1", "GRP2", "GRP3"))

    await server.ctx.write(make_group)
    async with accepting_station(ocpp_url, "GRP1"):
        response = await api.post("/api/diagnostics", json={"group": "district-7"})
        assert response.status_code == 201, response.text
        rows = {r["station_id"]: r for r in response.json()}
    assert sorted(rows) == ["GRP1", "GRP2", "GRP3"]
    assert rows["GRP1"]["state"] == "accepted"
    # offline stations do not make the request hang: failed at once, with the reason
    for offline in ("GRP2", "GRP3"):
        assert rows[offline]["state"] == "failed"
        assert "StationOffline" in rows[offline]["reason"]


# ---- the bad cases ---------------------------------------------------------------------------------


@pytest.mark.parametrize("settings_overrides", [{"upload_url_lifetime": 0.5}], indirect=True)
async def test_an_upload_that_never_arrives_expires(api: httpx.AsyncClient, ocpp_url: str) -> None:
    async with raw_station(ocpp_url, "NEVER") as station:
        station.answers["GetDiagnostics"] = {"fileName": "never.log"}
        row = await request_one(api, "NEVER")
        assert row["state"] == "accepted"
        await station.ok("DiagnosticsStatusNotification", {"status": "Uploading"})
        assert (await state_of(api, row["id"]))["state"] == "uploading"
        await station.ok("DiagnosticsStatusNotification", {"status": "Uploaded"})  # but nothing came
        expired = await in_state(api, row["id"], "expired")
        assert "no file arrived" in expired["reason"] and "said it uploaded" in expired["reason"]
        assert expired["closed_at"] is not None
        late = await httpx.AsyncClient().put(location_of(station), content=b"too late")
    assert late.status_code == 410, late.text
    assert (await api.get(f"/api/diagnostics/{row['id']}/file")).status_code == 404


@pytest.mark.parametrize(
    "settings_overrides", [{"upload_url_lifetime": 0.5, "diagnostics_expiry_interval": 0.2}], indirect=True
)
async def test_the_sweep_expires_overdue_requests_without_anyone_reading_them(
    api: httpx.AsyncClient, ocpp_url: str, server: Stekker
) -> None:
    async with raw_station(ocpp_url, "SWEPT") as station:
        station.answers["GetDiagnostics"] = {"fileName": "never.log"}
        row = await request_one(api, "SWEPT")

        async def state_in_database() -> str | None:
            async with server.ctx.db() as db:  # not through the API, which expires lazily too
                request = await db.get(DiagnosticsRequest, row["id"])
                return None if request is None else str(request.state)

        assert await eventually(lambda: _is(state_in_database(), "expired"), timeout=5)


async def _is(state: Any, expected: str) -> bool:
    return bool(await state == expected)


async def test_a_second_upload_is_refused_and_the_first_kept(
    api: httpx.AsyncClient, ocpp_url: str, server: Stekker
) -> None:
    async with raw_station(ocpp_url, "TWICE") as station:
        station.answers["GetDiagnostics"] = {"fileName": "twice.log"}
        row = await request_one(api, "TWICE")
        url = location_of(station)
        async with httpx.AsyncClient() as client:
            first = await client.put(f"{url}/first.log", content=b"the first file")
            assert first.status_code == 201, first.text
            assert first.json() == {
                "request_id": row["id"],
                "file_name": "first.log",
                "size": 14,
                "sha256": hashlib.sha256(b"the first file").hexdigest(),
            }
            second = await client.post(url, files={"file": ("first.log", b"an impostor", "text/plain")})
            third = await client.put(f"{url}/other.log", content=b"another")
    assert second.status_code == 409 and "already received" in second.json()["detail"]
    assert third.status_code == 409
    assert (await api.get(f"/api/diagnostics/{row['id']}/file")).content == b"the first file"
    assert [p.name for p in files_in(server)] == ["first.log"]


@pytest.mark.parametrize("settings_overrides", [{"upload_max_bytes": 1000}], indirect=True)
async def test_a_huge_upload_is_refused_and_nothing_kept(
    api: httpx.AsyncClient, ocpp_url: str, server: Stekker
) -> None:
    async def stream() -> AsyncIterator[bytes]:  # no Content-Length: caught while streaming
        for _ in range(10):
            yield b"x" * 300

    async with raw_station(ocpp_url, "HUGE") as station:
        station.answers["GetDiagnostics"] = {"fileName": "huge.log"}
        row = await request_one(api, "HUGE")
        url = location_of(station)
        async with httpx.AsyncClient() as client:
            declared = await client.put(url, content=b"x" * 5000)
            streamed = await client.put(url, content=stream())
            multipart = await client.post(url, files={"file": ("big.log", b"y" * 3000)})
            # the URL stays usable: a retry of the right size is taken
            fits = await client.post(url, files={"file": ("small.log", b"y" * 1000)})
    for response in (declared, streamed, multipart):
        assert response.status_code == 413, response.text
        assert "larger than 1000 bytes" in response.json()["detail"]
    assert fits.status_code == 201, fits.text
    assert [p.name for p in files_in(server)] == ["small.log"]  # no partial files left behind
    assert (await state_of(api, row["id"]))["file_size"] == 1000


async def test_a_wrong_url_reveals_nothing(api: httpx.AsyncClient, ocpp_url: str) -> None:
    async with raw_station(ocpp_url, "WRONG") as station:
        station.answers["GetDiagnostics"] = {"fileName": "w.log"}
        row = await request_one(api, "WRONG")
        url = location_of(station)
        base, request_id, secret = url.rsplit("/", 2)
        assert len(secret) >= 40 and secret not in str(await state_of(api, row["id"]))
        async with httpx.AsyncClient() as client:
            answers = [
                await client.put(f"{base}/{request_id}/{secret[:-1]}x", content=b"x"),
                await client.put(f"{base}/{int(request_id) + 1}/{secret}", content=b"x"),
                await client.put(f"{base}/999999999/{secret}", content=b"x"),
                await client.put(f"{base}/abc/{secret}", content=b"x"),
                await client.put(f"{base}/{request_id}/{'s' * 500}", content=b"x"),
                await client.put(f"{base}/-1/{secret}", content=b"x"),
            ]
            assert (await client.get(url)).status_code == 405
    for answer in answers:
        assert answer.status_code == 404, answer.text
        assert answer.json() == {"error": "not_found", "detail": "no such upload URL"}
    assert (await state_of(api, row["id"]))["state"] == "accepted"  # nothing was taken


async def test_path_traversal_in_the_file_name_stays_inside(
    api: httpx.AsyncClient, ocpp_url: str, server: Stekker, tmp_path: Path
) -> None:
    names = []
    for n, hostile in enumerate(["../../../evil.sh", "..\\..\\win.ini", "/etc/passwd", "....", ".hidden"]):
        async with raw_station(ocpp_url, f"TRAV{n}") as station:
            station.answers["GetDiagnostics"] = {"fileName": "t.log"}
            row = await request_one(api, f"TRAV{n}")
            async with httpx.AsyncClient() as client:
                done = await client.post(location_of(station), files={"file": (hostile, b"data")})
            assert done.status_code == 201, done.text
            names.append(done.json()["file_name"])
            download = await api.get(f"/api/diagnostics/{row['id']}/file")
            assert download.content == b"data"
    assert names == ["evil.sh", "win.ini", "passwd", "diagnostics-4.log", "hidden"]
    async with raw_station(ocpp_url, "TRAVURL") as station:
        station.answers["GetDiagnostics"] = {"fileName": "t.log"}
        await request_one(api, "TRAVURL")
        async with httpx.AsyncClient() as client:
            encoded = await client.put(f"{location_of(station)}/..%2F..%2Fescape.txt", content=b"data")
    assert encoded.status_code in (201, 404), encoded.text
    if encoded.status_code == 201:
        assert encoded.json()["file_name"] == "escape.txt"
    root = server.settings.storage_directory.resolve()
    assert all(root in p.resolve().parents for p in files_in(server))
    assert not stray_files(tmp_path)


async def test_station_refusals_errors_and_silence_end_the_request(
    api: httpx.AsyncClient, ocpp_url: str, server: Stekker
) -> None:
    assert (await api.post("/api/stations", json={"authentication": "none", "id": "GONE"})).status_code == 201
    offline = await request_one(api, "GONE")
    assert offline["state"] == "failed" and "StationOffline" in offline["reason"]

    async with raw_station(ocpp_url, "NOFILE") as station:
        station.answers["GetDiagnostics"] = {}  # 1.6: no fileName means nothing to upload
        rejected = await request_one(api, "NOFILE")
    assert rejected["state"] == "rejected" and "no diagnostics information" in rejected["reason"]

    async with raw_station(ocpp_url, "REJ201", protocol="ocpp2.0.1") as station:
        station.answers["GetLog"] = {"status": "Rejected"}
        rejected201 = await request_one(api, "REJ201")
        sent = next(f for f in station.server_calls if f[2] == "GetLog")[3]
    assert rejected201["state"] == "rejected" and rejected201["station_status"] == "Rejected"
    assert sent["requestId"] == rejected201["id"] and sent["logType"] == "DiagnosticsLog"

    station16 = SimulatedStation("NOSEC", ocpp_url, reboot_delay=0.1)
    async with running(station16):  # the 1.6 simulator has no security extension: CALLERROR
        call_error = await request_one(api, "NOSEC", log_type="SecurityLog")
    assert call_error["state"] == "failed" and "StationCallError" in call_error["reason"]

    async with raw_station(ocpp_url, "MUTE") as station:
        station.silent = True
        silent = await request_one(api, "MUTE")
    assert silent["state"] == "failed" and "CommandTimeout" in silent["reason"]


async def test_status_notifications_move_the_request(api: httpx.AsyncClient, ocpp_url: str) -> None:
    async with raw_station(ocpp_url, "FAIL16") as station:
        station.answers["GetDiagnostics"] = {"fileName": "f.log"}
        row = await request_one(api, "FAIL16")
        assert await station.ok("DiagnosticsStatusNotification", {"status": "Uploading"}) == {}
        assert await station.ok("DiagnosticsStatusNotification", {"status": "UploadFailed"}) == {}
        failed = await state_of(api, row["id"])
        assert (failed["state"], failed["station_status"]) == ("upload_failed", "UploadFailed")
        assert failed["reason"] == "station reported UploadFailed"
        # a retry by the station reopens it, and the file settles it
        await station.ok("DiagnosticsStatusNotification", {"status": "Uploading"})
        assert (await state_of(api, row["id"]))["state"] == "uploading"
        async with httpx.AsyncClient() as client:
            assert (await client.put(location_of(station), content=b"late but fine")).status_code == 201
        await station.ok("DiagnosticsStatusNotification", {"status": "Idle"})
        assert (await state_of(api, row["id"]))["state"] == "uploaded"

    async with raw_station(ocpp_url, "FAIL201", protocol="ocpp2.0.1") as station:
        station.answers["GetLog"] = {"status": "Accepted", "filename": "x.log"}
        first = await request_one(api, "FAIL201")
        second = await request_one(api, "FAIL201")
        # LogStatusNotification names its request: the older one fails, the newer is untouched
        notice = {"status": "PermissionDenied", "requestId": first["id"]}
        assert await station.ok("LogStatusNotification", notice) == {}
        assert await station.ok("LogStatusNotification", {"status": "Uploading", "requestId": 99999}) == {}
        assert (await state_of(api, first["id"]))["state"] == "upload_failed"
        assert (await state_of(api, second["id"]))["state"] == "accepted"
    events = (await api.get("/api/stations/FAIL201/events")).json()
    assert [e["detail"]["status"] for e in events if e["kind"] == "log_status"][-2:] in (
        ["PermissionDenied", "Uploading"],
        ["Uploading", "PermissionDenied"],
    )


# ---- who may ---------------------------------------------------------------------------------------


async def login(api: httpx.AsyncClient, username: str, role: str, admin: dict[str, str]) -> dict[str, str]:
    created = await api.post(
        "/api/users", json={"username": username, "password": "correct horse", "role": role}, headers=admin
    )
    assert created.status_code == 201, created.text
    token = await api.post("/api/auth/token", json={"username": username, "password": "correct horse"})
    assert token.status_code == 201, token.text
    return {"Authorization": f"Bearer {token.json()['token']}"}


async def test_the_municipality_requests_and_downloads_others_may_not(
    api: httpx.AsyncClient, ocpp_url: str
) -> None:
    admin = await login(api, "root", "admin", {})  # the first user, while the API is still open
    municipality = await login(api, "gemeente", "municipality", admin)
    helpdesk = await login(api, "helpdesk", "helpdesk", admin)
    reader = await login(api, "viewer", "read-only", admin)
    async with accepting_station(ocpp_url, "MUNI") as station:
        for refused in (helpdesk, reader, {}):
            response = await api.post("/api/diagnostics", json={"station_ids": ["MUNI"]}, headers=refused)
            assert response.status_code in (401, 403), response.text
        response = await api.post("/api/diagnostics", json={"station_ids": ["MUNI"]}, headers=municipality)
        assert response.status_code == 201, response.text
        [row] = response.json()
        assert row["requested_by"] == "user:gemeente"
        async with httpx.AsyncClient() as client:  # the station needs no token
            assert (await client.put(location_of(station), content=b"for the city")).status_code == 201
    path = f"/api/diagnostics/{row['id']}/file"
    assert (await api.get(path, headers=municipality)).content == b"for the city"
    for refused in (helpdesk, reader):
        assert (await api.get(path, headers=refused)).status_code == 403
        # everyone who reads may see that it exists and how it went
        assert (await api.get(f"/api/diagnostics/{row['id']}", headers=refused)).json()["state"] == "uploaded"
    audit = await api.get("/api/audit", headers=admin, params={"action": "diagnostics.file.downloaded"})
    if audit.status_code == 200:  # the audit API belongs to the users helper; checked when there
        actors = [e["actor"] for e in audit.json() if e["action"] == "diagnostics.file.downloaded"]
        assert actors == ["user:gemeente"]


# ---- hostile input ---------------------------------------------------------------------------------

BAD_REQUESTS: list[tuple[Any, int]] = [
    ({}, 422),
    ({"station_ids": []}, 422),
    ({"online": True}, 422),
    ({"station_ids": ["x'; DROP TABLE charging_stations;--"]}, 422),
    ({"station_ids": ["../../etc/passwd"]}, 422),
    ({"station_ids": ["NOPE"]}, 404),
    ({"station_ids": ["HOST", "NOPE"]}, 404),
    ({"station_ids": "HOST"}, 422),
    ({"station_ids": [123]}, 422),
    ({"station_ids": ["HOST"] * 1001}, 422),
    ({"station_ids": ["HOST"], "log_type": "Everything"}, 422),
    ({"station_ids": ["HOST"], "start": "yesterday"}, 422),
    ({"station_ids": ["HOST"], "start": "2026-11-02T00:00:00Z", "stop": "2026-11-01T00:00:00Z"}, 422),
    ({"station_ids": ["HOST"], "location": "ftp://evil.example/"}, 422),
    ({"group": "no-such-group"}, 404),
    ({"group": "g" * 1_000_000}, 422),
    ({"location_id": 4242}, 422),
    ({"location_id": "one"}, 422),
    ([], 422),
    ("not an object", 422),
]


async def test_hostile_requests_are_4xx_and_store_nothing(api: httpx.AsyncClient) -> None:
    assert (await api.post("/api/stations", json={"authentication": "none", "id": "HOST"})).status_code == 201
    for body, status in BAD_REQUESTS:
        response = await api.post("/api/diagnostics", json=body)
        assert response.status_code == status, (body if len(str(body)) < 200 else "huge", response.text)
        assert response.json()["detail"]
    garbage = await api.post(
        "/api/diagnostics", content=b"\xff\xfe{", headers={"Content-Type": "application/json"}
    )
    assert garbage.status_code == 400 and garbage.json()["detail"]
    assert (await api.get("/api/diagnostics")).json() == []

    for path, status in [
        ("/api/diagnostics/abc", 422),
        ("/api/diagnostics/0", 422),
        ("/api/diagnostics/-5", 422),
        ("/api/diagnostics/99999999999999999999999", 422),
        ("/api/diagnostics/999", 404),
        ("/api/diagnostics/999/file", 404),
        ("/api/diagnostics/1%27%20OR%201=1/file", 422),
        ("/api/diagnostics?state=bogus", 422),
        ("/api/diagnostics?station_id=a%20b", 422),
        ("/api/diagnostics?station_id=" + "x" * 100, 422),
        ("/api/diagnostics?limit=0", 422),
        ("/api/diagnostics?limit=many", 422),
    ]:
        response = await api.get(path)
        assert response.status_code == status, (path, response.text)
        assert response.json()["detail"]


async def broken_off_upload(url: str) -> None:
    """A station that announces 5000 bytes, sends 100 and hangs up."""
    parts = httpx.URL(url)
    _reader, writer = await asyncio.open_connection(parts.host, parts.port)
    head = f"PUT {parts.raw_path.decode()} HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n"
    writer.write(head.encode() + b"z" * 100)
    await writer.drain()
    writer.close()
    await writer.wait_closed()


async def test_hostile_uploads_are_4xx(api: httpx.AsyncClient, ocpp_url: str, server: Stekker) -> None:
    async with accepting_station(ocpp_url, "HOSTUP") as station:
        row = await request_one(api, "HOSTUP")
        url = location_of(station)
        form = {"Content-Type": "multipart/form-data; boundary=XyZ"}
        async with httpx.AsyncClient() as client:
            answers = [
                await client.post(url, content=b"--XyZ\r\n", headers={"Content-Type": "multipart/form-data"}),
                await client.post(url, content=b"no parts at all", headers=form),
                await client.post(
                    url,
                    content=b'--XyZ\r\nContent-Disposition: form-data; name="a"\r\n\r\nvalue\r\n--XyZ--\r\n',
                    headers=form,
                ),
                await client.post(
                    url,
                    content=b'--XyZ\r\nContent-Disposition: form-data; name="f"; filename="a"\r\n\r\ncut',
                    headers=form,
                ),
                await client.post(url, content=b"--XyZ\r\n" + b"H" * 20_000, headers=form),
            ]
        for answer in answers:
            assert answer.status_code == 400, answer.text
            assert answer.json()["error"] == "bad_multipart"
        assert files_in(server) == []
        await broken_off_upload(url)
        # and after all that the URL still takes the real file (a trailing slash is fine too)
        async with httpx.AsyncClient() as client:

            async def taken() -> bool:
                return (await client.put(url + "/", content=b"")).status_code == 201

            await eventually(taken)
        assert [p.name for p in files_in(server)] == ["station.log"]
    assert (await state_of(api, row["id"]))["file_size"] == 0


# ---- the command line --------------------------------------------------------------------------


async def test_cli_requests_lists_and_downloads(cli: Any, ocpp_url: str, tmp_path: Path) -> None:
    async with accepting_station(ocpp_url, "CLI1") as station:
        result = await cli("diagnostics", "request", "CLI1", "--type", "DiagnosticsLog")
        assert result.exit_code == 0, result.output
        assert "CLI1" in result.output and "accepted" in result.output
        async with httpx.AsyncClient() as client:
            assert (
                await client.put(f"{location_of(station)}/cli.log", content=b"via the cli")
            ).status_code == 201
    listed = await cli("diagnostics", "list", "--station", "CLI1")
    assert listed.exit_code == 0 and "uploaded" in listed.output and "cli.log" in listed.output
    target = tmp_path / "out.log"
    got = await cli("diagnostics", "get", "1", "--save", str(target))
    assert got.exit_code == 0, got.output
    assert target.read_bytes() == b"via the cli"
    missing = await cli("diagnostics", "get", "99")
    assert missing.exit_code == 1 and "404" in missing.output
    unknown = await cli("diagnostics", "request", "NOSUCH")
    assert unknown.exit_code == 1 and "NOSUCH" in unknown.output


async def test_as_a_remote_function_it_is_tracked_too(
    api: httpx.AsyncClient, ocpp_url: str, server: Stekker
) -> None:
    """Bulk jobs run get_diagnostics through the function registry: without a location the file
    still comes to Stekker (at STEKKER_PUBLIC_URL) and is tracked; with one it goes there as is."""
    server.settings.public_url = f"http://127.0.0.1:{server.http_port}"
    async with accepting_station(ocpp_url, "FUNC") as station:
        response = await api.post("/api/stations/FUNC/functions/get_diagnostics", json={"args": {}})
        assert response.status_code == 200, response.text
        result = response.json()
        assert result["accepted"] is True and result["reply"]["state"] == "accepted"
        assert location_of(station).startswith(f"{server.settings.public_url}/upload/diagnostics/")
        async with httpx.AsyncClient() as client:
            assert (await client.put(location_of(station), content=b"from a job")).status_code == 201
        download = await api.get(f"/api/diagnostics/{result['reply']['request_id']}/file")
        assert download.content == b"from a job"

        own = {"location": "ftp://logs.example/in/", "retries": 2, "retry_interval": 30}
        response = await api.post("/api/stations/FUNC/functions/get_diagnostics", json={"args": own})
        assert response.status_code == 200, response.text
        sent = station.server_calls[-1][3]
        assert sent == {"location": "ftp://logs.example/in/", "retries": 2, "retryInterval": 30}
        bad = await api.post(
            "/api/stations/FUNC/functions/get_diagnostics", json={"args": {"location": "file:///etc"}}
        )
        assert bad.status_code == 422, bad.text
    assert len((await api.get("/api/diagnostics", params={"station_id": "FUNC"})).json()) == 1


# ---- the storage contract ----------------------------------------------------------------------


async def chunks_of(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_local_disk_storage_keeps_its_contract(tmp_path: Path) -> None:
    storage = LocalDiskStorage(tmp_path / "store")
    stored = await storage.put("a/b/file.log", chunks_of(b"one ", b"two"))
    assert (stored.size, stored.sha256) == (7, hashlib.sha256(b"one two").hexdigest())
    assert b"".join([c async for c in storage.open("a/b/file.log")]) == b"one two"
    assert await storage.size("a/b/file.log") == 7
    with pytest.raises(FileExists):
        await storage.put("a/b/file.log", chunks_of(b"other"))
    with pytest.raises(FileTooLarge):
        await storage.put("a/big.log", chunks_of(b"x" * 10, b"x" * 10), max_size=15)
    assert await storage.size("a/big.log") is None
    with pytest.raises(FileMissing):
        [c async for c in storage.open("a/none.log")]
    for unsafe in ("", "../x", "a/../b", "/abs", "a//b", ".hidden", "a/.x", "a\\b", "x" * 200):
        with pytest.raises(ValueError, match="unsafe storage key"):
            await storage.size(unsafe)
    await storage.delete("a/b/file.log")
    await storage.delete("a/b/file.log")  # twice is fine
    assert await storage.size("a/b/file.log") is None
    leftovers = [p for p in (tmp_path / "store").rglob("*") if p.is_file()]
    assert leftovers == []  # no partial files
    assert safe_file_name("../../a b.log", "f") == "a_b.log" and safe_file_name("..", "f") == "f"
