"""The console's admin pages: bulk jobs and diagnostics, tokens, users, the audit log and
exports. Over HTTP (a real Stekker, SQLite and PostgreSQL): roles, CSRF on every action,
hostile input escaped, a job from confirmation to cancel, a diagnostics file downloaded, an
export round trip with pseudonyms for the municipality. In headless Chromium: an axe-core
scan and a screenshot of the jobs, tokens, audit and exports pages."""

from __future__ import annotations

import csv
import io
import re
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.app import Stekker
from stekker.db.models import (
    AuditEntry,
    ChargingSession,
    ChargingStation,
    Location,
    StationGroup,
    StationGroupMember,
    Token,
)
from stekker.db.models_users import Role
from stekker.services import diagnostics, users
from stekker.services.audit import record_audit
from stekker.web import audit_page, jobs_page, tokens_page
from tests.web.conftest import PASSWORD, csrf_of, http_login

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'
XSS_UID = "<script>alert(1)</script>"  # printable, no spaces: a valid token uid
ROLES = (Role.ADMIN, Role.OPERATOR, Role.HELPDESK, Role.MUNICIPALITY, Role.READ_ONLY)

# --- view logic without a server ---------------------------------------------------------------


def test_job_kinds_are_the_operators() -> None:
    # bulk jobs are the operator's: the helpdesk resets one station from its page, the
    # municipality requests diagnostics on the diagnostics page
    assert set(jobs_page.offered(Role.ADMIN)) == set(jobs_page.KINDS)
    assert set(jobs_page.offered(Role.OPERATOR)) == set(jobs_page.KINDS)
    for role in (Role.HELPDESK, Role.MUNICIPALITY, Role.READ_ONLY):
        assert jobs_page.offered(role) == []


def test_job_form_reading() -> None:
    selection = jobs_page.selection_of({"stations": "A1, A2\nA1 ;B-3", "group": "north", "location": "7"})
    assert (
        selection.station_ids == ("A1", "A2", "B-3")
        and selection.group == "north"
        and selection.location_id == 7
    )
    for bad in ({"stations": "<b>"}, {"group": "a b"}, {"location": "x"}, {}):
        with pytest.raises(jobs_page.FormProblem):
            jobs_page.selection_of(bad)
    assert jobs_page.args_of("reset", {"reset_type": "Hard"}) == {"type": "Hard"}
    assert jobs_page.args_of("reset", {"reset_type": "<x>"}) == {"type": "Soft"}
    assert jobs_page.args_of("change_configuration", {"config_key": " K ", "config_value": " v"}) == {
        "key": "K",
        "value": " v",
    }
    firmware = jobs_page.args_of(
        "update_firmware", {"firmware_url": "https://x/f.bin", "retrieve_at": "2026-07-01T10:00"}
    )
    assert firmware["retrieve_at"] == "2026-07-01T10:00:00+02:00"  # home time, summer


def test_token_search_and_audit_details() -> None:
    assert tokens_page.search_filter("") is None
    assert tokens_page.search_filter("12") is not None
    text = audit_page.detail_text({"name": XSS, "n": 1})
    assert "<script>alert" in text  # plain text: the template escapes it
    assert audit_page.detail_text({"x": "y" * 10_000}).endswith(" …")


# --- over HTTP ---------------------------------------------------------------------------------


@pytest.fixture
def settings_overrides(tmp_path: Path) -> dict[str, Any]:
    """Uploaded files in the test's own directory (on PostgreSQL they would go to ./stekker-files)."""
    return {"files_dir": tmp_path / "files"}


@pytest.fixture
async def web(server: Stekker) -> AsyncIterator[httpx.AsyncClient]:
    for role in ROLES:
        await users.create_user(server.ctx, "test", role.value, PASSWORD, role)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}", timeout=30) as client:
        yield client


async def as_user(web: httpx.AsyncClient, role: str) -> None:
    web.cookies.clear()
    assert (await http_login(web, role)).status_code == 303


async def _fleet(server: Stekker, count: int = 3) -> int:
    """Offline stations ADM0..ADMn at a location, in group "north"; the location's id."""

    async def job(db: AsyncSession) -> int:
        place = Location(
            name=XSS,
            address="Hoofdstraat 1",
            city="Utrecht",
            latitude=Decimal("52.09"),
            longitude=Decimal("5.12"),
        )
        group = StationGroup(name="north")
        db.add_all([place, group])
        await db.flush()
        for n in range(count):
            db.add(ChargingStation(id=f"ADM{n}", location_id=place.id, online=False))
        await db.flush()
        for n in range(count):
            db.add(StationGroupMember(group_id=group.id, station_id=f"ADM{n}"))
        return place.id

    return await server.ctx.write(job)


async def test_each_admin_page_checks_the_role(web: httpx.AsyncClient) -> None:
    allowed = {
        "/console/jobs": {"admin", "operator", "municipality"},
        "/console/jobs/diagnostics": {"admin", "operator", "municipality"},
        "/console/tokens": {"admin", "operator", "helpdesk"},
        "/console/audit": {"admin", "operator", "municipality"},
        "/console/exports": {"admin", "operator", "municipality"},
        "/console/users": {"admin"},
    }
    for role in ROLES:
        await as_user(web, role.value)
        for path, roles in allowed.items():
            answer = await web.get(path)
            expected = 200 if role.value in roles else 403
            assert answer.status_code == expected, (role, path, answer.text[:300])
    await as_user(web, "helpdesk")
    assert "Geen toegang" in (await web.get("/console/audit")).text
    web.cookies.clear()
    assert (await web.get("/console/audit")).status_code == 303  # not logged in: to the login page


async def test_every_action_needs_the_csrf_token(web: httpx.AsyncClient, server: Stekker) -> None:
    await _fleet(server, 1)
    await as_user(web, "admin")
    page = await web.get("/console/tokens")
    token = csrf_of(page.text)
    actions = [
        ("/console/jobs/confirm", {"function": "reset", "stations": "ADM0"}),
        ("/console/jobs/start", {"function": "reset", "stations": "ADM0"}),
        ("/console/jobs/diagnostics", {"stations": "ADM0"}),
        ("/console/jobs/1/cancel", {}),
        ("/console/tokens", {"uid": "CSRF1"}),
        ("/console/tokens/1/edit", {"energy_supplier": "X"}),
        ("/console/tokens/1/block", {}),
        ("/console/tokens/1/unblock", {}),
        ("/console/users", {"username": "eve", "role": "admin", "password": "x" * 12}),
        ("/console/users/operator/role", {"role": "admin"}),
        ("/console/users/operator/disable", {}),
        ("/console/users/operator/enable", {}),
        ("/console/users/operator/sessions/revoke", {}),
        ("/console/exports/download", {"kind": "sessions"}),
    ]
    for path, data in actions:
        missing = await web.post(path, data=data)
        assert missing.status_code == 403 and "niet van deze site" in missing.text, path
        wrong = await web.post(path, data={**data, "csrf_token": "0" * 64})
        assert wrong.status_code == 403, path
        cross = await web.post(
            path, data={**data, "csrf_token": token}, headers={"Origin": "https://evil.example"}
        )
        assert cross.status_code == 403, path
    async with server.ctx.db() as db:
        assert await db.scalar(select(Token.id).where(Token.uid == "CSRF1")) is None
        entries = (
            (await db.execute(select(AuditEntry.action).where(AuditEntry.actor != "test"))).scalars().all()
        )
    assert not [a for a in entries if a.startswith(("job.", "user.", "token.", "export.", "diagnostics."))]


async def test_a_bulk_job_from_confirmation_to_cancel(web: httpx.AsyncClient, server: Stekker) -> None:
    location = await _fleet(server)
    await as_user(web, "operator")
    page = await web.get("/console/jobs")
    assert "&lt;script&gt;" in page.text and "<script>alert" not in page.text  # the location's name
    token = csrf_of(page.text)
    empty = await web.post("/console/jobs/confirm", data={"csrf_token": token, "function": "reset"})
    assert empty.status_code == 400 and "Kies eerst laadpalen" in empty.text
    hostile = await web.post(
        "/console/jobs/confirm",
        data={"csrf_token": token, "function": "change_configuration", "group": "north", "config_key": XSS},
    )
    assert (
        hostile.status_code == 400
        and "<script>alert" not in hostile.text
        and "&lt;script&gt;" in hostile.text
    )
    unknown = await web.post(
        "/console/jobs/confirm", data={"csrf_token": token, "function": "raw", "stations": "ADM0"}
    )
    assert unknown.status_code == 403  # raw is for admin only
    form = {
        "csrf_token": token,
        "function": "change_configuration",
        "group": "north",
        "location": str(location),
        "stations": "",
        "config_key": "HeartbeatInterval",
        "config_value": XSS,
    }
    confirm = await web.post("/console/jobs/confirm", data=form)
    assert confirm.status_code == 200, confirm.text
    assert re.search(r'id="job-count">3<', confirm.text)
    assert "<script>alert" not in confirm.text and "&lt;script&gt;" in confirm.text
    async with server.ctx.db() as db:
        assert not (await db.execute(select(AuditEntry).where(AuditEntry.action.like("job.%")))).first()
    hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', confirm.text))
    assert hidden["config_key"] == "HeartbeatInterval" and hidden["group"] == "north"
    import html

    started = await web.post("/console/jobs/start", data={k: html.unescape(v) for k, v in hidden.items()})
    assert started.status_code == 303
    job_url = started.headers["location"]
    detail = await web.get(job_url)
    assert detail.status_code == 200
    assert re.findall(r'data-station="([^"]+)"', detail.text) == ["ADM0", "ADM1", "ADM2"]
    assert "Wacht op verbinding" in detail.text and 'hx-trigger="every 2s"' in detail.text
    assert "<script>alert" not in detail.text and "&lt;script&gt;" in detail.text  # the argument shown
    fragment = await web.get(job_url, headers={"HX-Request": "true"})
    assert fragment.text.startswith('<div id="job-progress"') and "<html" not in fragment.text
    listing = await web.get("/console/jobs")
    assert "0 van 3 klaar" in listing.text

    await as_user(web, "municipality")  # may watch, may not cancel a configuration job
    watched = await web.get(job_url)
    assert watched.status_code == 200 and "/cancel" not in watched.text
    page = await web.get(job_url + "/cancel")
    assert page.status_code == 403
    denied = await web.post(job_url + "/cancel", data={"csrf_token": csrf_of(watched.text)})
    assert denied.status_code == 403

    await as_user(web, "operator")
    ask = await web.get(job_url + "/cancel")
    assert ask.status_code == 200 and "Ja, annuleer" in ask.text
    done = await web.post(job_url + "/cancel", data={"csrf_token": csrf_of(ask.text)})
    assert done.status_code == 303
    after = await web.get(job_url)
    assert "Geannuleerd" in after.text and 'hx-trigger="every 2s"' not in after.text
    again = await web.post(job_url + "/cancel", data={"csrf_token": csrf_of(ask.text)})
    assert again.status_code == 409 and "already" in again.text
    assert (await web.get("/console/jobs/999999")).status_code == 404
    assert (await web.get("/console/jobs/abc")).status_code in (400, 404, 422)


async def test_diagnostics_for_the_municipality_with_a_download(
    web: httpx.AsyncClient, server: Stekker, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _fleet(server, 2)
    await as_user(web, "municipality")
    page = await web.get("/console/jobs/diagnostics")
    token = csrf_of(page.text)
    bad = await web.post("/console/jobs/diagnostics", data={"csrf_token": token, "stations": "NOPE1"})
    assert bad.status_code == 400 and "NOPE1" in bad.text
    with monkeypatch.context() as patch:
        patch.setattr(secrets, "token_urlsafe", lambda n=32: "known-secret")
        asked = await web.post(
            "/console/jobs/diagnostics", data={"csrf_token": token, "stations": "ADM0 ADM1"}
        )
    assert asked.status_code == 200 and "2 aanvragen verstuurd" in asked.text
    ids = [int(i) for i in re.findall(r'data-diagnostics="(\d+)"', asked.text)]
    assert len(ids) == 2 and "Mislukt" in asked.text  # offline stations: failed, with the reason

    async def chunks() -> AsyncIterator[bytes]:
        yield b"log line 1\n<script>x</script>\n"

    await diagnostics.receive_upload(
        server.ctx, ids[0], "known-secret", "station.log", "text/plain", chunks()
    )
    listing = await web.get("/console/jobs/diagnostics", params={"station": "ADM1"})
    assert re.findall(r'data-diagnostics="(\d+)"', listing.text) == [str(ids[0])]  # newest first: ADM1's
    link = f"/console/jobs/diagnostics/{ids[0]}/file"
    assert link in listing.text and "Ontvangen" in listing.text
    download = await web.get(link)
    assert download.status_code == 200 and download.content == b"log line 1\n<script>x</script>\n"
    assert download.headers["content-type"] == "application/octet-stream"
    assert 'filename="station.log"' in download.headers["content-disposition"]
    assert (await web.get(f"/console/jobs/diagnostics/{ids[1]}/file")).status_code == 404
    assert (await web.get("/console/jobs/diagnostics", params={"station": "<b>"})).status_code == 400
    async with server.ctx.db() as db:
        actions = (
            await db.execute(select(AuditEntry.action).where(AuditEntry.actor == "user:municipality"))
        ).scalars()
        assert "diagnostics.file.downloaded" in set(actions)
    await as_user(web, "helpdesk")
    assert (await web.get(link)).status_code == 403


async def test_tokens_search_add_block_and_edit(web: httpx.AsyncClient, server: Stekker) -> None:
    await as_user(web, "operator")
    page = await web.get("/console/tokens")
    token = csrf_of(page.text)
    added = await web.post(
        "/console/tokens",
        data={"csrf_token": token, "uid": XSS_UID, "type": "RFID", "visual_number": "NL-STK-0001-2345-6"},
    )
    assert added.status_code == 303
    token_url = added.headers["location"].split("?")[0]
    shown = await web.get(token_url)
    assert "<script>alert(1)" not in shown.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in shown.text
    twice = await web.post("/console/tokens", data={"csrf_token": token, "uid": XSS_UID})
    assert twice.status_code == 409 and "<script>alert(1)" not in twice.text
    spaced = await web.post("/console/tokens", data={"csrf_token": token, "uid": "has space"})
    assert spaced.status_code == 400
    for query in ("script", "23456", "2345-6", XSS_UID):
        found = await web.get("/console/tokens", params={"q": query})
        assert found.text.count("data-token=") == 1, query
        assert "<script>alert(1)" not in found.text
    assert (await web.get("/console/tokens", params={"q": "%"})).text.count("data-token=") == 0

    blocked = await web.post(token_url + "/block", data={"csrf_token": token})
    assert blocked.status_code == 303
    assert "Geblokkeerd" in (await web.get(token_url)).text
    assert "data-token=" in (await web.get("/console/tokens", params={"status": "blocked"})).text
    await web.post(token_url + "/unblock", data={"csrf_token": token})
    edited = await web.post(
        token_url + "/edit",
        data={"csrf_token": token, "energy_supplier": XSS, "energy_contract_id": "C-1", "contract_id": ""},
    )
    assert edited.status_code == 303
    after = await web.get(token_url)
    assert "Actief" in after.text and "&lt;img src=x" in after.text and "<img src=x" not in after.text
    orphan = await web.post(token_url + "/edit", data={"csrf_token": token, "energy_contract_id": "C-2"})
    assert orphan.status_code == 400 and "energy_supplier" in orphan.text  # the service's own check
    assert (await web.get("/console/tokens/999999")).status_code == 404

    await as_user(web, "helpdesk")  # looks up, does not change
    seen = await web.get(token_url)
    assert seen.status_code == 200 and "/block" not in seen.text and "/edit" not in seen.text
    refused = await web.post(token_url + "/block", data={"csrf_token": csrf_of(seen.text)})
    assert refused.status_code == 403
    async with server.ctx.db() as db:
        row = (await db.execute(select(Token).where(Token.uid == XSS_UID))).scalar_one()
        assert row.status == "active" and row.energy_supplier == XSS


async def test_only_the_admin_manages_users(web: httpx.AsyncClient, server: Stekker) -> None:
    await as_user(web, "municipality")
    assert (await web.get("/console/users")).status_code == 403
    sneaky = await web.post(
        "/console/users",
        data={
            "csrf_token": csrf_of((await web.get("/console/jobs")).text),
            "username": "x",
            "password": "p" * 10,
            "role": "admin",
        },
    )
    assert sneaky.status_code == 403
    await as_user(web, "admin")
    page = await web.get("/console/users")
    token = csrf_of(page.text)
    bad = await web.post(
        "/console/users", data={"csrf_token": token, "username": XSS, "password": "short", "role": "operator"}
    )
    assert bad.status_code == 400 and "<script>alert" not in bad.text
    weak = await web.post(
        "/console/users",
        data={"csrf_token": token, "username": "carol", "password": "short", "role": "operator"},
    )
    assert weak.status_code == 400 and "8 tekens" in weak.text
    made = await web.post(
        "/console/users",
        data={
            "csrf_token": token,
            "username": "Carol",
            "display_name": XSS,
            "password": PASSWORD,
            "role": "helpdesk",
        },
    )
    assert made.status_code == 303
    listing = await web.get("/console/users?done=created")
    assert 'data-user="carol"' in listing.text and "<script>alert" not in listing.text
    dup = await web.post(
        "/console/users",
        data={"csrf_token": token, "username": "carol", "password": PASSWORD, "role": "helpdesk"},
    )
    assert dup.status_code == 409

    carol = httpx.AsyncClient(base_url=str(web.base_url), timeout=30)
    async with carol:
        assert (await http_login(carol, "carol")).status_code == 303
        assert (await carol.get("/console/tokens")).status_code == 200
        assert (
            await web.post("/console/users/carol/role", data={"csrf_token": token, "role": "operator"})
        ).status_code == 303
        assert (await carol.get("/console/exports")).status_code == 200  # the new role at once
        assert (
            await web.post("/console/users/carol/sessions/revoke", data={"csrf_token": token})
        ).status_code == 303
        assert (await carol.get("/console/exports")).status_code == 303  # logged out
        assert (await http_login(carol, "carol")).status_code == 303
        assert (await web.post("/console/users/carol/disable", data={"csrf_token": token})).status_code == 303
        assert (await carol.get("/console/exports")).status_code == 303
        assert (await http_login(carol, "carol")).status_code in (401, 403)
        assert (await web.post("/console/users/carol/enable", data={"csrf_token": token})).status_code == 303
        carol.cookies.clear()
        assert (await http_login(carol, "carol")).status_code == 303
    last = await web.post("/console/users/admin/disable", data={"csrf_token": token})
    assert last.status_code == 409 and "last active admin" in last.text
    demote = await web.post("/console/users/admin/role", data={"csrf_token": token, "role": "<b>"})
    assert demote.status_code == 400
    assert (await web.post("/console/users/nobody/disable", data={"csrf_token": token})).status_code == 404
    async with server.ctx.db() as db:
        actions = set(
            (await db.execute(select(AuditEntry.action).where(AuditEntry.actor == "user:admin"))).scalars()
        )
    assert {"user.created", "user.role.changed", "api_token.revoked"} <= actions


async def test_the_audit_log_filters_pages_by_key_and_escapes(
    web: httpx.AsyncClient, server: Stekker
) -> None:
    for n in range(120):
        await record_audit(
            server.ctx,
            actor="user:bot" if n % 2 else "user:other",
            action="station.reset" if n % 3 else "tariff.approved",
            object_type="station",
            object_id=f"S{n}",
            note=XSS,
        )
    await as_user(web, "municipality")
    first = await web.get("/console/audit", params={"actor": "user:bot"})
    ids = [int(i) for i in re.findall(r'data-audit="(\d+)"', first.text)]
    assert len(ids) == 50 and ids == sorted(ids, reverse=True)
    assert "<script>alert" not in first.text and "&lt;script&gt;alert" in first.text
    seen = list(ids)
    page = first
    while 'rel="next"' in page.text:
        found = re.search(r'href="([^"]+)" rel="next"', page.text)
        assert found is not None
        page = await web.get(found.group(1).replace("&amp;", "&"))
        seen += [int(i) for i in re.findall(r'data-audit="(\d+)"', page.text)]
    assert len(seen) == 60 and len(set(seen)) == 60
    back = re.search(r'href="([^"]+)" rel="prev"', page.text)
    assert back is not None
    previous = await web.get(back.group(1).replace("&amp;", "&"))
    assert [int(i) for i in re.findall(r'data-audit="(\d+)"', previous.text)] == seen[:50]
    prefixed = await web.get("/console/audit", params={"action": "tariff.", "object_id": "S3"})
    assert re.findall(r'data-audit="(\d+)"', prefixed.text) and "station.reset" not in prefixed.text
    wildcard = await web.get("/console/audit", params={"action": "%"})
    assert "data-audit=" not in wildcard.text
    today = datetime.now(UTC).date()
    period = await web.get(
        "/console/audit",
        params={"from": str(today - timedelta(days=1)), "to": str(today + timedelta(days=1))},
    )
    assert period.text.count("data-audit=") == 50
    future = await web.get("/console/audit", params={"from": str(today + timedelta(days=2))})
    assert "data-audit=" not in future.text
    for bad in ({"from": "2026-13-40"}, {"from": "2026-02-02", "to": "2026-01-01"}, {"from": XSS[:10]}):
        answer = await web.get("/console/audit", params=bad)
        assert answer.status_code == 400 and "<script>" not in answer.text


async def _sessions(server: Stekker) -> None:
    async def job(db: AsyncSession) -> None:
        db.add(ChargingStation(id="EXP1", online=False))
        await db.flush()
        for n, uid in enumerate(("04A1B2C3D4", "04A1B2C3D4", "DEADBEEF01")):
            db.add(
                ChargingSession(
                    station_id="EXP1",
                    evse_number=1,
                    connector_number=1,
                    start_key=f"k{n}",
                    token_uid=uid,
                    auth_status="Accepted",
                    start_time=datetime.now(UTC) - timedelta(hours=n + 1),
                )
            )

    await server.ctx.write(job)


def _rows(body: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))


async def test_an_export_round_trip_with_pseudonyms_for_the_municipality(
    web: httpx.AsyncClient, server: Stekker
) -> None:
    await _sessions(server)
    await as_user(web, "operator")
    page = await web.get("/console/exports")
    assert "token_uid" in page.text and 'name="pseudonymise"' in page.text  # the column documentation
    form = {"csrf_token": csrf_of(page.text), "kind": "sessions", "format": "csv", "station": "EXP1"}
    raw = await web.post("/console/exports/download", data=form)
    assert raw.status_code == 200 and raw.headers["x-pseudonymised"] == "false"
    assert "attachment" in raw.headers["content-disposition"] and raw.headers["content-type"].startswith(
        "text/csv"
    )
    rows = _rows(raw.content)
    assert sorted(r["token_uid"] for r in rows) == ["04A1B2C3D4", "04A1B2C3D4", "DEADBEEF01"]
    asked = await web.post("/console/exports/download", data={**form, "pseudonymise": "yes"})
    assert asked.headers["x-pseudonymised"] == "true"

    await as_user(web, "municipality")
    page = await web.get("/console/exports")
    assert 'name="pseudonymise"' not in page.text
    form["csrf_token"] = csrf_of(page.text)
    hidden = await web.post("/console/exports/download", data={**form, "pseudonymise": "no"})
    assert hidden.status_code == 200 and hidden.headers["x-pseudonymised"] == "true"
    assert b"04A1B2C3D4" not in hidden.content and b"DEADBEEF01" not in hidden.content
    pseudonyms = [r["token_uid"] for r in _rows(hidden.content)]
    assert all(p.startswith("p:") for p in pseudonyms) and len(set(pseudonyms)) == 2
    today = datetime.now(UTC).date()
    period = await web.post(
        "/console/exports/download", data={**form, "from": str(today + timedelta(days=2)), "format": "jsonl"}
    )
    assert period.status_code == 200 and period.content == b""
    for bad, code in (
        ({"kind": "<script>"}, 404),
        ({"format": "xls"}, 400),
        ({"from": "yesterday"}, 400),
        ({"station": XSS}, 400),
        ({"station": "NOPE"}, 404),
        ({"location": "abc"}, 400),
        ({"kind": "status_history", "partner": "1"}, 400),
    ):
        answer = await web.post("/console/exports/download", data={**form, **bad})
        assert answer.status_code == code, (bad, answer.text[:500])
        assert "<script>" not in answer.text
    async with server.ctx.db() as db:
        started = (
            (
                await db.execute(
                    select(AuditEntry).where(AuditEntry.action == "export.started").order_by(AuditEntry.id)
                )
            )
            .scalars()
            .all()
        )
    assert [e.actor for e in started] == [
        "user:operator",
        "user:operator",
        "user:municipality",
        "user:municipality",
    ]
    assert [e.detail["pseudonymised"] for e in started] == [False, True, True, True]


# --- in the browser ---------------------------------------------------------------------------


@pytest.mark.asyncio(loop_scope="module")
async def test_admin_pages_pass_axe_and_are_photographed(browser: Any, web_server: Stekker) -> None:
    from tests.web.conftest import axe_violations, base_url, screenshot

    async def job(db: AsyncSession) -> None:
        db.add(ChargingStation(id="AXEADM1", online=False))
        db.add(Token(uid="04AXE00001", visual_number="NL-STK-000001", energy_supplier="Stroom BV"))

    await web_server.ctx.write(job)
    await record_audit(
        web_server.ctx, actor="user:admin", action="token.updated", object_type="token", object_id=1, note=XSS
    )
    context = await browser.new_context(base_url=base_url(web_server), bypass_csp=True)
    page = await context.new_page()
    try:
        await page.goto("/console/login")
        await page.get_by_label("Gebruikersnaam").fill("admin")
        await page.get_by_label("Wachtwoord").fill(PASSWORD)
        await page.get_by_role("button", name="Inloggen").click()
        await page.wait_for_url("**/console/")
        # a job through its confirmation page, by keyboard-reachable buttons
        await page.goto("/console/jobs")
        await page.get_by_label("Laadpalen (id's)").fill("AXEADM1")
        await page.get_by_label("Functie").select_option("reset")
        await page.get_by_role("button", name="Controleren").click()
        await page.get_by_role("heading", name="Bulktaak bevestigen").wait_for()
        found = {"job confirm": await axe_violations(page)}
        await screenshot(page, "console-job-confirm")
        await page.get_by_role("button", name="Ja, start de bulktaak").click()
        await page.wait_for_url(re.compile(r".*/console/jobs/\d+$"))
        assert await page.locator("[data-station=AXEADM1]").count() == 1
        found["job"] = await axe_violations(page)
        await screenshot(page, "console-job")
        pages = {
            "jobs": "/console/jobs",
            "diagnostics": "/console/jobs/diagnostics",
            "tokens": "/console/tokens?q=axe",
            "audit": "/console/audit",
            "exports": "/console/exports",
            "users": "/console/users",
        }
        for name, path in pages.items():
            await page.goto(path)
            found[name] = await axe_violations(page)
            await screenshot(page, f"console-{name}")
        assert await page.evaluate("window.__pwned") is None
        problems = {
            name: [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in violations]
            for name, violations in found.items()
            if violations
        }
        assert problems == {}
    finally:
        await context.close()
