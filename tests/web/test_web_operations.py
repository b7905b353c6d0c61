"""The console's station pages for operations over HTTP: remote functions behind a
confirmation with the station's real answer, configuration (read, change, drift from the
group's template), the timeline, the map of locations and the group filter; roles, CSRF and
hostile input."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.app import Stekker
from stekker.db.models import ChargingStation, Location
from stekker.db.models_users import Role
from stekker.services import inventory, templates, tokens, users
from stekker.services.templates import TemplateItem
from stekker.sim import SimulatedStation
from stekker.web.station_map import MapPoint, project
from tests.observe import eventually
from tests.web.conftest import PASSWORD, csrf_of, http_login

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: these tests are about the pages, the services are tested on both backends."""
    return f"sqlite+aiosqlite:///{tmp_path / 'stekker.db'}"


@pytest.fixture
async def web(server: Stekker) -> AsyncIterator[httpx.AsyncClient]:
    for role in Role:
        await users.create_user(server.ctx, "test", role.value, PASSWORD, role)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}", timeout=30) as client:
        yield client


@contextlib.asynccontextmanager
async def running(station: SimulatedStation) -> AsyncIterator[SimulatedStation]:
    task = asyncio.create_task(station.run())
    try:
        await station.wait_online(timeout=10)
        yield station
    finally:
        await station.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 5)


async def as_user(web: httpx.AsyncClient, role: str) -> str:
    """Log in as `role`; the session's CSRF token."""
    web.cookies.clear()
    assert (await http_login(web, role)).status_code == 303
    return csrf_of((await web.get("/console/")).text)


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


async def test_remote_functions_need_their_role_a_confirmation_and_the_csrf_token(
    web: httpx.AsyncClient, server: Stekker
) -> None:
    station = SimulatedStation("OPS1", f"ws://127.0.0.1:{server.ocpp_port}/ocpp", unplug_delay=0.1)
    async with running(station):
        # read-only: sees the station, may run only the reading functions
        csrf = await as_user(web, "read-only")
        page = await web.get("/console/stations/OPS1/functions")
        assert page.status_code == 200
        # reading functions are asked at once, changing ones after a confirmation
        assert 'action="/console/stations/OPS1/functions/get_local_list_version"' in page.text
        assert "reset/confirm" not in page.text
        assert (await web.get("/console/stations/OPS1/functions/reset/confirm?type=Soft")).status_code == 403
        refused = await web.post(
            "/console/stations/OPS1/functions/reset", data={"csrf_token": csrf, "type": "Soft"}
        )
        assert refused.status_code == 403 and "Geen toegang" in refused.text
        # helpdesk: confirmation first (nothing sent), then the station's answer
        csrf = await as_user(web, "helpdesk")
        confirm = await web.get("/console/stations/OPS1/functions/unlock_connector/confirm?evse_number=1")
        assert confirm.status_code == 200
        assert "Bevestigen: Kabel ontgrendelen" in confirm.text and "Ja, uitvoeren" in confirm.text
        no_token = await web.post(
            "/console/stations/OPS1/functions/unlock_connector", data={"evse_number": "1"}
        )
        assert no_token.status_code == 403 and "niet van deze site" in no_token.text
        cross = await web.post(
            "/console/stations/OPS1/functions/unlock_connector",
            data={"csrf_token": csrf, "evse_number": "1"},
            headers={"Origin": "https://evil.example"},
        )
        assert cross.status_code == 403
        done = await web.post(
            "/console/stations/OPS1/functions/unlock_connector", data={"csrf_token": csrf, "evse_number": "1"}
        )
        assert done.status_code == 200, done.text
        assert 'id="answer-outcome">Geaccepteerd<' in done.text and ">Unlocked<" in done.text
        assert "De laadpaal heeft de kabel ontgrendeld." in done.text
        trigger = await web.post(
            "/console/stations/OPS1/functions/trigger_message?lang=en",
            data={"csrf_token": csrf, "message": "Heartbeat"},
        )
        assert (
            "Accepted" in trigger.text and "The station accepted the request for a message." in trigger.text
        )
        # helpdesk may not change configuration, nor clear the cache (operator functions)
        assert (await web.get("/console/stations/OPS1/configuration")).status_code == 200
        assert (
            await web.get("/console/stations/OPS1/configuration/confirm?label=X&value=1")
        ).status_code == 403
        denied = await web.post(
            "/console/stations/OPS1/configuration", data={"csrf_token": csrf, "label": "X"}
        )
        assert denied.status_code == 403
        assert (await web.get("/console/stations/OPS1/functions/clear_cache/confirm")).status_code == 403
        # the operator changes a key: confirmation shows now and new, then the station's answer
        csrf = await as_user(web, "operator")
        await web.post(
            "/console/stations/OPS1/functions/get_configuration", data={"csrf_token": csrf, "keys": ""}
        )
        confirm = await web.get(
            "/console/stations/OPS1/configuration/confirm",
            params={"label": "HeartbeatInterval", "value": "120"},
        )
        assert (
            confirm.status_code == 200 and "Nu bekend" in confirm.text and "<code>300</code>" in confirm.text
        )
        changed = await web.post(
            "/console/stations/OPS1/configuration",
            data={"csrf_token": csrf, "label": "HeartbeatInterval", "value": "120"},
        )
        assert changed.status_code == 200 and "Geaccepteerd" in changed.text
        assert station.config("HeartbeatInterval") == "120"
        rejected = await web.post(
            "/console/stations/OPS1/configuration",
            data={"csrf_token": csrf, "label": "HeartbeatInterval", "value": "soon"},
        )
        assert "Geweigerd door de laadpaal" in rejected.text
        listing = await web.get("/console/stations/OPS1/configuration")
        assert "HeartbeatInterval" in listing.text and '<code translate="no">120</code>' in listing.text
        # remote start and stop, with the station's answers
        start = await web.post(
            "/console/stations/OPS1/functions/remote_start",
            data={"csrf_token": csrf, "token_uid": "NOSUCHCARD", "evse_number": "1"},
        )
        assert start.status_code in (200, 409)
        assert "Niet verstuurd" in start.text or "Geweigerd" in start.text or "Geaccepteerd" in start.text
    # offline now: said so, nothing sent
    offline = await web.post("/console/stations/OPS1/functions/clear_cache", data={"csrf_token": csrf})
    assert offline.status_code == 409 and "Laadpaal offline" in offline.text


async def test_hostile_and_bad_input_is_escaped_or_explained(web: httpx.AsyncClient, server: Stekker) -> None:
    async def job(db: AsyncSession) -> None:
        db.add(ChargingStation(id="HOSTILE1", notes=XSS))

    await server.ctx.write(job)
    csrf = await as_user(web, "admin")
    confirm = await web.get(
        "/console/stations/HOSTILE1/functions/data_transfer/confirm",
        params={"vendor_id": "x"},
    )
    assert confirm.status_code == 200
    hostile = await web.get(
        "/console/stations/HOSTILE1/functions/remote_start/confirm", params={"token_uid": XSS[:36]}
    )
    assert "<script>" not in hostile.text and "&lt;script&gt;" in hostile.text
    bad_json = await web.get(
        "/console/stations/HOSTILE1/functions/raw/confirm", params={"action": "Heartbeat", "payload": "{nope"}
    )
    assert bad_json.status_code == 422 and "Inhoud (JSON): dit is geen geldige JSON." in bad_json.text
    bad_int = await web.get(
        "/console/stations/HOSTILE1/functions/unlock_connector/confirm", params={"evse_number": "x1"}
    )
    assert bad_int.status_code == 422 and "Laadpunt: vul een heel getal in." in bad_int.text
    bad_choice = await web.get("/console/stations/HOSTILE1/functions/reset/confirm", params={"type": XSS})
    assert bad_choice.status_code == 422 and "<script>" not in bad_choice.text
    assert (await web.get("/console/stations/HOSTILE1/functions/nope/confirm")).status_code == 404
    opened = await web.get("/console/stations/HOSTILE1/functions", params={"open": XSS})
    assert opened.status_code == 400 and "<script>" not in opened.text
    # a session that does not run here cannot be stopped from here, whatever the form says
    not_here = await web.get(
        "/console/stations/HOSTILE1/functions/remote_stop/confirm",
        params={"session_id": "12345", "from": XSS},
    )
    assert (
        not_here.status_code == 422 and "deze laadsessie loopt niet (meer) op deze laadpaal" in not_here.text
    )
    assert "<script>" not in not_here.text
    assert 'id="fn-remote_stop" data-function="remote_stop" open' in not_here.text
    assert (await web.get("/console/stations/NOPE/functions")).status_code == 404
    assert (await web.get("/console/stations/%3Cscript%3E/functions")).status_code in (400, 404)
    bad_label = await web.get(
        "/console/stations/HOSTILE1/configuration/confirm", params={"label": XSS, "value": XSS}
    )
    assert bad_label.status_code == 400 and "<script>" not in bad_label.text
    label = await web.get(
        "/console/stations/HOSTILE1/configuration/confirm", params={"label": "Foo", "value": XSS}
    )
    assert label.status_code == 200 and "<script>" not in label.text and "&lt;script&gt;" in label.text
    offline = await web.post(
        "/console/stations/HOSTILE1/configuration", data={"csrf_token": csrf, "label": "Foo", "value": "1"}
    )
    assert offline.status_code == 409 and "Laadpaal offline" in offline.text
    timeline = await web.get("/console/stations/HOSTILE1/timeline", params={"hours": "999"})
    assert timeline.status_code == 400
    huge = await web.post(
        "/console/stations/HOSTILE1/functions/raw",
        data={"csrf_token": csrf, "action": "Heartbeat", "payload": "x" * 70_000},
    )
    assert huge.status_code == 400  # the form itself is too large to read
    long_field = await web.post(
        "/console/stations/HOSTILE1/functions/data_transfer",
        data={"csrf_token": csrf, "vendor_id": "v" * 300},
    )
    assert long_field.status_code == 422 and "Leverancierscode: te lang" in long_field.text


async def test_configuration_drift_and_timeline(web: httpx.AsyncClient, server: Stekker) -> None:
    station = SimulatedStation("OPS2", f"ws://127.0.0.1:{server.ocpp_port}/ocpp")
    async with running(station):
        await inventory.create_group(server.ctx, "test", "west", None)
        await inventory.change_members(server.ctx, "test", "west", ["OPS2"], add=True)
        await templates.create_template(
            server.ctx,
            "test",
            "west-std",
            "west",
            [TemplateItem("HeartbeatInterval", "600"), TemplateItem("MeterValueSampleInterval", "10")],
        )
        csrf = await as_user(web, "operator")
        before = await web.get("/console/stations/OPS2/configuration")
        assert "west-std" in before.text and "nog niet gemeld" in before.text
        report = await web.post(
            "/console/stations/OPS2/functions/get_base_report",
            data={"csrf_token": csrf, "report_base": "FullInventory"},
        )
        assert "Geaccepteerd" in report.text
        after = text((await web.get("/console/stations/OPS2/configuration")).text)
        assert "HeartbeatInterval 600 300 wijkt af" in after
        assert "MeterValueSampleInterval 10 10 in orde" in after
        await tokens.upsert_token(server.ctx, "test", tokens.TokenInput("CARD-TL"))
        assert await station.start_session(1, "CARD-TL") is not None
        timeline = await web.get("/console/stations/OPS2/timeline")
        assert timeline.status_code == 200
        assert 'data-kind="event"' in timeline.text and 'data-kind="status"' in timeline.text
        assert 'data-kind="message"' not in timeline.text
        with_frames = await web.get(
            "/console/stations/OPS2/timeline", params={"messages": "true", "hours": "1"}
        )
        assert 'data-kind="message"' in with_frames.text and "BootNotification" in with_frames.text
        functions = await eventually(
            lambda: _page_with(web, "/console/stations/OPS2/functions", 'name="session_id"')
        )
        assert "Laadsessie stoppen" in functions


async def _page_with(web: httpx.AsyncClient, path: str, needle: str) -> str | None:
    page = (await web.get(path)).text
    return page if needle in page else None


async def test_the_map_and_the_group_filter(web: httpx.AsyncClient, server: Stekker) -> None:
    async def job(db: AsyncSession) -> None:
        for n, (name, lat, lon) in enumerate(
            [(XSS, "52.37", "4.89"), ("Utrecht CS", "52.09", "5.11"), ("Maastricht", "50.85", "5.69")]
        ):
            place = Location(
                name=name, address="x", city="Stad", latitude=Decimal(lat), longitude=Decimal(lon)
            )
            db.add(place)
            await db.flush()
            for k in range(2):
                db.add(ChargingStation(id=f"MAP{n}{k}", location_id=place.id, online=k == 0))

    await server.ctx.write(job)
    await inventory.create_group(server.ctx, "test", "zuid", None)
    await inventory.change_members(server.ctx, "test", "zuid", ["MAP20", "MAP21"], add=True)
    await as_user(web, "read-only")
    page = await web.get("/console/stations")
    assert page.status_code == 200
    assert page.text.count("<circle") == 3 and "<svg" in page.text
    assert "<script>alert" not in page.text and "&lt;script&gt;" in page.text
    assert "Utrecht CS, Stad: 2 laadpalen, 1 online" in page.text
    assert '<option value="zuid">zuid</option>' in page.text
    south = await web.get("/console/stations", params={"group": "zuid"})
    assert "MAP20" in south.text and "MAP00" not in south.text and south.text.count("<circle") == 1
    link = re.search(r'href="(/console/stations\?[^"]*location_id=\d+)"', south.text)
    assert link is not None
    only = await web.get(link.group(1).replace("&amp;", "&"))
    assert "MAP21" in only.text and "Alle locaties" in only.text
    nothing = await web.get("/console/stations", params={"group": XSS})
    assert nothing.status_code == 200 and "Geen locaties bij deze filters." in nothing.text
    assert "<script>alert" not in nothing.text
    assert (await web.get("/console/stations", params={"location_id": "-1"})).status_code == 400


def test_the_projection_keeps_north_up_and_fits_the_box() -> None:
    raw = [
        (MapPoint(1, "A", "a", 1, 1), 53.0, 5.0),
        (MapPoint(2, "B", "b", 1, 0), 51.0, 6.0),
        (MapPoint(3, "C", "c", 1, 0), 52.0, 5.5),
    ]
    placed = {p.location_id: p for p in project(raw)}
    assert placed[1].y < placed[3].y < placed[2].y  # north is up
    assert placed[1].x < placed[3].x < placed[2].x
    assert all(0 <= p.x <= 640 and 0 <= p.y <= 400 for p in placed.values())
    [single] = project([(MapPoint(9, "X", "x", 1, 1), 52.0, 5.0)])
    assert (single.x, single.y) == (320.0, 200.0)
    assert project([]) == []


def test_a_map_of_many_locations_groups_the_nearby_ones() -> None:
    from stekker.web.station_map import GROUP_ABOVE, MapPoint, group_nearby, project

    # 200 locations in one town and one far away: the town becomes one point that counts them
    town = [
        (MapPoint(n + 1, f"L{n}", "Utrecht", 2, 1), 52.09 + n * 1e-5, 5.11 + n * 1e-5) for n in range(200)
    ]
    far = [(MapPoint(999, "Vrijthof", "Maastricht", 3, 3), 50.85, 5.69)]
    placed = project(town + far)
    assert len(placed) > GROUP_ABOVE
    grouped = group_nearby(placed)
    assert len(grouped) == 2
    cluster = next(p for p in grouped if p.locations > 1)
    assert (cluster.locations, cluster.stations, cluster.online, cluster.location_id) == (200, 400, 200, 0)
    alone = next(p for p in grouped if p.locations == 1)
    assert (alone.location_id, alone.name, alone.state) == (999, "Vrijthof", "ok")


@pytest.mark.parametrize("settings_overrides", [{"call_timeout": 2.0, "reset_boot_window": 0.5}])
async def test_a_reset_whose_answer_was_lost_is_an_unknown_outcome_said_in_words(
    web: httpx.AsyncClient, server: Stekker
) -> None:
    from tests.test_reset_outcome import RebootingStation

    station = RebootingStation(f"ws://127.0.0.1:{server.ocpp_port}/ocpp/LOST1", comes_back=False)
    async with station.running():
        csrf = await as_user(web, "helpdesk")
        answer = await web.post(
            "/console/stations/LOST1/functions/reset", data={"csrf_token": csrf, "type": "Hard"}
        )
    assert station.resets == 1
    assert answer.status_code == 202  # as the API: it may have happened
    assert 'id="answer-outcome">Uitkomst onbekend<' in answer.text
    assert (
        "Onbekend of de laadpaal de herstart heeft uitgevoerd: de verbinding viel weg nadat de "
        "opdracht was verstuurd." in text(answer.text)
    )


def test_every_text_the_functions_pages_build_is_in_both_languages() -> None:
    from stekker.domain import remote_functions as support
    from stekker.web import function_forms as forms
    from stekker.web import i18n
    from stekker.web.station_actions import ANSWER_STATUS

    keys = {f"fx_group_{g}" for g in forms.GROUPS} | {
        "fx_version_1.6",
        "fx_version_2.x",
        "fx_version_unknown",
    }
    for f in forms.CATALOGUE.values():
        keys |= {f"fn_{f.name}", f"fn_{f.name}_what", f"fx_obj_{f.name}"}
        for field in f.inputs:
            keys |= {field.label, field.empty} | ({field.hint} if field.hint else set())
            for version in (support.OCPP16, support.OCPP201, None):
                keys |= {c.label for c in forms.choices_of(field, version)}
    for outcome in {*ANSWER_STATUS, "accepted", "rejected"}:
        keys |= {f"outcome_{outcome}", f"outcome_{outcome}_explain"}
        keys.add(f"fx_said_{outcome}" if outcome in ("accepted", "rejected") else f"fx_outcome_{outcome}")
    keys |= {
        f"fx_impact_{i}"
        for i in ("ends_now", "ends_gracefully", "waits_for_sessions", "refused_while_charging")
    }
    missing = sorted(k for k in keys if k not in i18n.CATALOGUE)
    assert missing == []
