"""The console's sessions and CDRs: lists with filters and paging, a session's chart of
power and energy (inline SVG with a table of the same numbers), CDR details with
corrections, for every reading role; tokens shown in full only to those who help drivers.

The chart logic without a server; the pages over HTTP (SQLite and PostgreSQL); and in
Chromium a session on a simulated station, its chart, an axe scan and screenshots.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.app import Stekker
from stekker.db.models import ChargingSession, ChargingStation, MeterValue
from stekker.db.models_users import Role
from stekker.domain.metering import SampledValue
from stekker.services import cdrs, redaction, tokens, users
from stekker.services.tariffs import seed_demo_tariff
from stekker.sim import SimulatedStation
from stekker.web import charts
from stekker.web.sessions_page import day_start
from tests.web.conftest import PASSWORD, axe_violations, http_login, login_page, screenshot

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'
T0 = datetime(2030, 11, 24, 9, 0, tzinfo=UTC)  # after the demo tariff takes effect
ROLES = (Role.ADMIN, Role.OPERATOR, Role.HELPDESK, Role.MUNICIPALITY, Role.READ_ONLY)

# --- the chart, without a server -----------------------------------------------------------------


def _sv(
    minute: int, measurand: str, value: str, unit: str | None = None, phase: str | None = None
) -> SampledValue:
    return SampledValue(T0 + timedelta(minutes=minute), value, measurand, phase=phase, unit=unit)


def test_samples_sum_phases_read_units_and_count_energy_from_the_start() -> None:
    values = [
        _sv(0, "Energy.Active.Import.Register", "1000.5", "kWh"),
        _sv(0, "Power.Active.Import", "3.7", "kW", "L1"),
        _sv(0, "Power.Active.Import", "3.7", "kW", "L2"),
        _sv(10, "Energy.Active.Import.Register", "1001.734", "kWh"),
        _sv(10, "Power.Active.Import", "7400", "W"),
        _sv(20, "Energy.Active.Import.Register", "garbage", "kWh"),
        _sv(20, "Power.Active.Import", "NaN", "W"),
        _sv(30, "Current.Import", "16", "A"),
    ]
    samples = charts.samples_of(values, meter_start_wh=1_000_500)
    assert [(s.at.minute, s.power_w, s.energy_wh) for s in samples] == [
        (0, Decimal("7400.0"), 0),
        (10, Decimal("7400"), 1234),
    ]


def test_power_is_derived_from_the_register_when_a_station_sends_none() -> None:
    values = [
        _sv(0, "Energy.Active.Import.Register", "5000"),
        _sv(15, "Energy.Active.Import.Register", "7750"),
        _sv(30, "Energy.Active.Import.Register", "10500"),
    ]
    samples = charts.samples_of(values, meter_start_wh=None)
    assert [(s.power_w, s.energy_wh) for s in samples] == [
        (None, 0),
        (Decimal(11000), 2750),
        (Decimal(11000), 5500),
    ]
    chart = charts.build(samples)
    assert chart is not None and chart.max_power_kw == Decimal(20) and chart.max_energy_kwh == Decimal(10)
    assert chart.power_points.count(",") == 2 and chart.energy_points.count(",") == 3
    assert [t.label for t in chart.x_ticks] == ["10:00", "10:07", "10:15", "10:22", "10:30"]  # Amsterdam
    assert [t.label for t in chart.energy_ticks] == ["0", "2,5", "5", "7,5", "10"]
    top = chart.top
    assert chart.power_ticks[-1].position == top and chart.power_ticks[0].position == chart.bottom


def test_axes_thinning_and_nothing_to_draw() -> None:
    assert [charts.nice_ceiling(Decimal(v)) for v in ("0", "0.7", "3", "7.4", "11", "22", "150")] == [
        Decimal(1),
        Decimal(1),
        Decimal(5),
        Decimal(10),
        Decimal(20),
        Decimal("25"),
        Decimal(200),
    ]
    many = [charts.Sample(T0 + timedelta(seconds=i), Decimal(i), i) for i in range(10_000)]
    thin = charts.thin(many)
    assert len(thin) == charts.MAX_POINTS and thin[0] is many[0] and thin[-1] is many[-1]
    assert charts.build([]) is None
    assert charts.build([charts.Sample(T0, None, None)]) is None
    one = charts.build([charts.Sample(T0, Decimal(3000), 0)])
    assert one is not None and one.has_power and one.has_energy


def test_periods_and_tokens() -> None:
    assert day_start("2026-07-01", "from") == datetime(2026, 6, 30, 22, 0, tzinfo=UTC)
    assert day_start("2026-11-24", "to", next_day=True) == datetime(2026, 11, 24, 23, 0, tzinfo=UTC)
    assert day_start("", "from") is None
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        day_start("2026-02-31", "from")
    assert [r for r in Role if redaction.sees_identifiers(r)] == [Role.ADMIN, Role.OPERATOR, Role.HELPDESK]


# --- over HTTP -----------------------------------------------------------------------------------

Login = Callable[[str], Awaitable[httpx.AsyncClient]]


@pytest.fixture
async def login(server: Stekker) -> AsyncIterator[Login]:
    for role in ROLES:
        await users.create_user(server.ctx, "test", role.value, PASSWORD, role)
    clients: list[httpx.AsyncClient] = []

    async def make(username: str) -> httpx.AsyncClient:
        client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}", timeout=30)
        clients.append(client)
        assert (await http_login(client, username)).status_code == 303
        return client

    yield make
    for client in clients:
        await client.aclose()


async def _sessions(server: Stekker, count: int, token: str = "04A1B2C3D4") -> list[int]:
    """`count` sessions on stations S-A and S-B, an hour apart from T0; the even ones completed,
    each with meter values every 5 minutes."""

    async def job(db: AsyncSession) -> list[int]:
        for station in ("S-A", "S-B"):
            if await db.get(ChargingStation, station) is None:
                db.add(ChargingStation(id=station, online=True))
        await db.flush()
        ids = []
        for n in range(count):
            start = T0 + timedelta(hours=n)
            done = n % 2 == 0
            row = ChargingSession(
                station_id="S-A" if n % 3 else "S-B",
                evse_number=1,
                connector_number=1,
                start_key=f"k{n}-{start.timestamp()}",
                token_uid=token,
                auth_status="Accepted",
                status="completed" if done else "active",
                start_time=start,
                stop_time=start + timedelta(minutes=30) if done else None,
                meter_start_wh=1_000_000,
                meter_last_wh=1_005_500,
                meter_stop_wh=1_005_500 if done else None,
                energy_wh=5500 if done else None,
            )
            db.add(row)
            await db.flush()
            ids.append(row.id)
            for minute in range(0, 31, 5):
                at = start + timedelta(minutes=minute)
                register = str(1_000_000 + minute * 11000 // 60)
                for measurand, value, unit in (
                    ("Energy.Active.Import.Register", register, "Wh"),
                    ("Power.Active.Import", "11000" if minute < 30 else "0", "W"),
                ):
                    db.add(
                        MeterValue(
                            station_id=row.station_id,
                            session_id=row.id,
                            evse_number=1,
                            connector_number=1,
                            timestamp=at,
                            measurand=measurand,
                            unit=unit,
                            value=value,
                        )
                    )
        return ids

    ids: list[int] = await server.ctx.write(job)
    return ids


def _ids(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'data-session="(\d+)"', html)]


async def test_every_reading_role_sees_sessions_and_cdrs_tokens_in_full_only_for_driver_support(
    login: Login, server: Stekker
) -> None:
    ids = await _sessions(server, 2)
    cdr = await cdrs.build_cdr(server.ctx, ids[0])
    assert cdr is not None
    pseudonym = (await redaction.pseudonymiser(server.ctx))("04A1B2C3D4")
    for role in ROLES:
        client = await login(role.value)
        for path in (
            "/console/sessions",
            f"/console/sessions/{ids[0]}",
            "/console/cdrs",
            f"/console/cdrs/{cdr.cdr_uid}",
        ):
            page = await client.get(path)
            assert page.status_code == 200, (role, path)
            full = role in (Role.ADMIN, Role.OPERATOR, Role.HELPDESK)
            if path != "/console/cdrs":
                assert ("04A1B2C3D4" in page.text) is full, (role, path)
                # the others see the pseudonym the API and the export show them
                assert full or pseudonym in page.text, (role, path)
    anonymous = httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}")
    async with anonymous:
        assert (await anonymous.get("/console/sessions")).status_code == 303
        assert (await anonymous.get(f"/console/cdrs/{cdr.cdr_uid}")).status_code == 303


async def test_sessions_filter_by_station_status_and_period_and_page_by_key(
    login: Login, server: Stekker
) -> None:
    ids = await _sessions(server, 120)
    client = await login("read-only")
    first = await client.get("/console/sessions")
    assert "120 laadsessies" in first.text
    assert _ids(first.text) == sorted(ids, reverse=True)[:50]  # newest first
    assert 'rel="prev"' not in first.text
    seen, page = _ids(first.text), first
    while 'rel="next"' in page.text:
        found = re.search(r'href="([^"]+)" rel="next"', page.text)
        assert found is not None
        page = await client.get(found.group(1).replace("&amp;", "&"))
        seen += _ids(page.text)
    assert seen == sorted(ids, reverse=True)
    back = re.search(r'href="([^"]+)" rel="prev"', page.text)
    assert back is not None
    previous = await client.get(back.group(1).replace("&amp;", "&"))
    assert _ids(previous.text) == sorted(ids, reverse=True)[50:100]

    active = await client.get("/console/sessions", params={"status": "active"})
    assert "60 laadsessies" in active.text and "Bezig" in active.text
    on_b = await client.get("/console/sessions", params={"station": "s-b"})
    assert "40 laadsessies" in on_b.text
    # T0 is 10:00 on 24 November in Amsterdam: 14 sessions start that day, 24 the next
    day = await client.get("/console/sessions", params={"from": "2030-11-24", "to": "2030-11-24"})
    assert "14 laadsessies" in day.text
    two = await client.get(
        "/console/sessions", params={"from": "2030-11-25", "to": "2030-11-25", "station": "S-A"}
    )
    assert "16 laadsessies" in two.text
    bad = await client.get("/console/sessions", params={"from": "2026-02-31"})
    assert bad.status_code == 400 and "write a date as YYYY-MM-DD" in bad.text
    hostile = await client.get("/console/sessions", params={"station": XSS})
    assert (
        hostile.status_code == 200
        and "<script>alert" not in hostile.text
        and "&lt;script&gt;" in hostile.text
    )
    wildcard = await client.get("/console/sessions", params={"station": "%"})
    assert "0 laadsessies" in wildcard.text
    for path in ("/console/sessions/0", "/console/sessions/abc", "/console/sessions/999999"):
        answer = await client.get(path)
        assert answer.status_code in (400, 404), path
    assert "Deze laadsessie bestaat niet." in (await client.get("/console/sessions/999999")).text


async def test_the_session_page_draws_power_and_energy_and_lists_its_cdrs(
    login: Login, server: Stekker
) -> None:
    await seed_demo_tariff(server.ctx)
    ids = await _sessions(server, 2, token=XSS[:60])
    cdr = await cdrs.build_cdr(server.ctx, ids[0])
    assert cdr is not None and cdr.total_cost_incl_vat > 0
    credit, fixed = await cdrs.correct_cdr(
        server.ctx, cdr.cdr_uid, actor="user:operator", reason=XSS, energy_wh=5000
    )
    client = await login("helpdesk")
    page = await client.get(f"/console/sessions/{ids[0]}")
    assert page.status_code == 200
    assert '<svg id="session-chart"' in page.text and 'role="img"' in page.text
    assert '<title id="chart-title">Vermogen en geladen energie van laadsessie' in page.text
    assert 'aria-labelledby="chart-title chart-desc"' in page.text and "7 meetpunten" in page.text
    assert 'id="power-line"' in page.text and 'id="energy-line"' in page.text
    table = page.text[page.text.index('<table id="chart-data">') :]
    assert table.count('<th scope="row">') == 7 and "11,00" in table and "5,500" in table
    for uid in (cdr.cdr_uid, credit.cdr_uid, fixed.cdr_uid):
        assert f'data-cdr="{uid}"' in page.text
    assert "Creditering" in page.text and "gecrediteerd door" in page.text
    assert "<script>alert" not in page.text and "&lt;script&gt;" in page.text  # a hostile token uid
    english = await client.get(f"/console/sessions/{ids[0]}?lang=en")
    assert "Power and energy charged in session" in english.text and "The readings as a table" in english.text
    running = await client.get(f"/console/sessions/{ids[1]}?lang=nl")  # and back to Dutch
    assert 'hx-trigger="stekker:session from:body"' in running.text  # the live chart of a running session
    assert "De afrekening volgt als de laadsessie is afgelopen." in running.text
    fragment = await client.get(f"/console/sessions/{ids[1]}", headers={"HX-Request": "true"})
    assert fragment.text.startswith('<div id="session-live"') and "<html" not in fragment.text
    assert (
        "hx-trigger" not in page.text.split('id="session-live"')[1].split(">")[0]
    )  # a finished one is still

    detail = await client.get(f"/console/cdrs/{fixed.cdr_uid}")
    assert detail.status_code == 200
    assert f'href="/console/cdrs/{cdr.cdr_uid}"' in detail.text and "vervangt" in detail.text
    assert "Demo tariff" in detail.text and "versie 1" in detail.text and "5,0 kWh" in detail.text
    assert "&lt;script&gt;" in detail.text and "<script>alert" not in detail.text  # the reason
    original = await client.get(f"/console/cdrs/{cdr.cdr_uid}")
    assert f'href="/console/cdrs/{credit.cdr_uid}"' in original.text and "gecrediteerd door" in original.text
    assert "Laadperiodes" in original.text and "Meterstanden" in original.text
    listing = await client.get("/console/cdrs", params={"kind": "credit"})
    assert re.findall(r'data-cdr="([^"]+)"', listing.text) == [credit.cdr_uid]
    by_station = await client.get("/console/cdrs", params={"station": "S-A"})
    assert re.findall(r'data-cdr="([^"]+)"', by_station.text) == []  # session 1 was at S-B
    empty_period = await client.get("/console/cdrs", params={"from": "2031-01-01"})
    assert "Geen afrekeningen gevonden." in empty_period.text
    bad = await client.get("/console/cdrs", params={"from": "2026-11-25", "to": "2026-11-20"})
    assert bad.status_code == 400 and "before the first" in bad.text
    missing = await client.get("/console/cdrs/CDR-0-0")
    assert missing.status_code == 404 and "Deze afrekening bestaat niet." in missing.text


async def test_cdrs_page_by_key(login: Login, server: Stekker) -> None:
    ids = await _sessions(server, 110)
    built = [await cdrs.build_cdr(server.ctx, i) for i in ids if ids.index(i) % 2 == 0]
    uids = [c.cdr_uid for c in reversed([b for b in built if b is not None])]  # newest first
    client = await login("municipality")
    page = await client.get("/console/cdrs")
    seen = re.findall(r'data-cdr="([^"]+)"', page.text)
    while 'rel="next"' in page.text:
        found = re.search(r'href="([^"]+)" rel="next"', page.text)
        assert found is not None
        page = await client.get(found.group(1).replace("&amp;", "&"))
        seen += re.findall(r'data-cdr="([^"]+)"', page.text)
    assert seen == uids and len(seen) == 55


# --- in Chromium ---------------------------------------------------------------------------------


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


@pytest.mark.asyncio(loop_scope="module")
async def test_a_simulated_session_is_charted_and_the_pages_pass_axe(
    browser: Any, web_server: Stekker
) -> None:
    from playwright.async_api import expect

    await tokens.upsert_token(web_server.ctx, "test", tokens.TokenInput(uid="SIMCARD01"))
    await seed_demo_tariff(web_server.ctx)
    url = f"ws://127.0.0.1:{web_server.ocpp_port}/ocpp"
    async with running(
        SimulatedStation("CHART1", url, meter_interval=1, unplug_delay=0.1, reboot_delay=0.1)
    ) as st:
        assert await st.start_session(1, "SIMCARD01") is not None
        for _ in range(100):  # a few periodic meter values, a second apart
            async with web_server.ctx.db() as db:
                count = len(
                    list(
                        (
                            await db.execute(select(MeterValue.id).where(MeterValue.station_id == "CHART1"))
                        ).all()
                    )
                )
            if count >= 15:
                break
            await asyncio.sleep(0.2)
        page = await login_page(browser, web_server, "read-only", bypass_csp=True)
        try:
            await page.goto("/console/sessions?station=CHART1")
            await page.get_by_role("link", name=re.compile(r"^\d+$")).first.click()
            await page.wait_for_url(re.compile(r"/console/sessions/\d+$"))
            chart = page.get_by_role("img", name=re.compile("Vermogen en geladen energie"))
            await expect(chart).to_be_visible()
            assert await page.locator("#power-line").count() == 1
            await expect(page.locator("#session-live")).to_have_attribute(
                "hx-trigger", "stekker:session from:body"
            )
            found = {"session (running)": await axe_violations(page)}
            await screenshot(page, "console-session-running")
            await st.stop_session(1)
            session_url = page.url
            # the CDR follows the stop; the page shows it
            for _ in range(50):
                await page.goto(session_url)
                if await page.locator("[data-cdr]").count():
                    break
                await asyncio.sleep(0.2)
            assert await page.locator("[data-cdr]").count() == 1
            await page.get_by_text("De meetwaarden als tabel").click()
            table = page.get_by_role("table", name=re.compile("Vermogen en geladen energie"))
            await expect(table).to_be_visible()
            assert await table.get_by_role("row").count() >= 4
            found["session"] = await axe_violations(page)
            await screenshot(page, "console-session")
            await page.locator("[data-cdr] a").first.click()
            await page.wait_for_url("**/console/cdrs/CDR-*")
            assert "Demo tariff" in await page.get_by_role("main").inner_text()
            found["cdr"] = await axe_violations(page)
            await screenshot(page, "console-cdr")
            for path, name in (("/console/sessions", "console-sessions"), ("/console/cdrs", "console-cdrs")):
                await page.goto(path)
                found[path] = await axe_violations(page)
                await screenshot(page, name)
            problems = {
                where: [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in violations]
                for where, violations in found.items()
                if violations
            }
            assert problems == {}
        finally:
            await page.context.close()
