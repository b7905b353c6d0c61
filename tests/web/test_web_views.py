"""The console's view logic without a browser: formatting, the catalogue, the login throttle,
and over HTTP (a real Stekker, SQLite and PostgreSQL) login, CSRF, lock-out, roles, hostile
input and paging of a large fleet."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.app import Stekker
from stekker.db.models import ChargingStation, Location
from stekker.db.models_users import Role
from stekker.domain.opening_hours import Availability, opening_hours
from stekker.services import users
from stekker.web import auth, format, i18n
from stekker.web.login import safe_next
from tests.web.conftest import PASSWORD, csrf_of, http_login

TEMPLATES = Path(__file__).resolve().parents[2] / "stekker" / "web" / "templates"
XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'

# --- formatting and language -------------------------------------------------------------------


def test_dates_are_dutch_and_in_home_time() -> None:
    assert format.format_datetime(datetime(2026, 11, 24, 13, 5, tzinfo=UTC)) == "24-11-2026 14:05"
    assert (
        format.format_datetime(datetime(2026, 7, 1, 12, 5, tzinfo=UTC)) == "01-07-2026 14:05"
    )  # summer time
    assert format.format_datetime(datetime(2026, 11, 24, 13, 5)) == "24-11-2026 14:05"  # naive is UTC
    assert format.format_datetime(datetime(2026, 11, 24, 13, 5, 9, tzinfo=UTC), seconds=True) == (
        "24-11-2026 14:05:09"
    )
    assert format.format_datetime(None) == ""


def test_money_energy_and_numbers_are_dutch() -> None:
    assert format.format_money(Decimal("1234.56")) == "€ 1.234,56"
    assert format.format_money(Decimal("1234.56"), lang="en") == "€1,234.56"
    assert format.format_money(Decimal("12.463")) == "€ 12,46"  # an amount: whole cents, as billed
    assert format.format_money(Decimal("12.469"), bound="max") == "€ 12,46"  # a maximum: never above
    assert format.format_unit_price(Decimal("0.4235")) == "€ 0,4235"  # a per-kWh price keeps its decimals
    assert format.format_money(Decimal("-1234567.5")) == "-€ 1.234.567,50"
    assert format.format_money(None) == "" and format.format_unit_price(None) == ""
    assert format.format_energy(12_345) == "12,3 kWh"
    assert format.format_energy(0) == "0,0 kWh"
    assert format.format_int(12_345_678) == "12.345.678"
    assert format.format_int(-1000) == "-1.000"
    assert format.format_decimal(Decimal("2.005")) == "2,01"
    assert format.format_duration(timedelta(hours=2, minutes=5), "nl") == "2 u 05 min"
    assert format.format_duration(timedelta(days=3, hours=4), "en") == "3 d 4 h"


def test_the_start_of_today_is_midnight_in_amsterdam() -> None:
    from stekker.web.overview import start_of_today

    assert start_of_today(datetime(2026, 11, 24, 6, 0, tzinfo=UTC)) == datetime(
        2026, 11, 23, 23, 0, tzinfo=UTC
    )
    assert start_of_today(datetime(2026, 7, 1, 21, 30, tzinfo=UTC)) == datetime(
        2026, 6, 30, 22, 0, tzinfo=UTC
    )
    assert start_of_today(datetime(2026, 7, 1, 22, 30, tzinfo=UTC)) == datetime(2026, 7, 1, 22, 0, tzinfo=UTC)


def test_every_text_a_template_uses_is_in_the_catalogue_in_both_languages() -> None:
    used: set[str] = set()
    for path in TEMPLATES.glob("*.html"):
        used |= set(re.findall(r"""\bt\(\s*["']([a-z0-9_]+)["']\s*[,)]""", path.read_text()))
    assert used, "no texts found: the pattern no longer matches the templates"
    missing = sorted(key for key in used if key not in i18n.CATALOGUE)
    assert missing == []
    for key, (nl, en) in i18n.CATALOGUE.items():
        assert nl.strip() and en.strip(), key
    for role in Role:  # built keys: role_<role>, status_<OCPP status>
        assert f"role_{role.value}" in i18n.CATALOGUE


def test_language_choice() -> None:
    assert i18n.pick(None) == "nl"
    assert i18n.pick("en") == "en"
    assert i18n.pick("fr") == "nl"
    assert (
        i18n.translate("en", "login_locked", minutes=15)
        == "Too many failed attempts. Try again in 15 minutes."
    )
    assert i18n.translate("nl", "no-such-key") == "no-such-key"


def test_after_login_only_console_paths() -> None:
    assert safe_next("/console/stations?q=1") == "/console/stations?q=1"
    for hostile in ("//evil.example/console", "https://evil.example/", "/console\\@evil", "/other", None, ""):
        assert safe_next(hostile) == "/console/"


def test_opening_hours_from_ocpi() -> None:
    # none stored means always open, as the open data and OCPI publish it (issue 17, item 18)
    assert opening_hours(None).availability is Availability.ALWAYS
    assert opening_hours({}).availability is Availability.ALWAYS
    assert opening_hours({"twentyfourseven": True}).availability is Availability.ALWAYS
    assert opening_hours({"twentyfourseven": False}).availability is Availability.UNKNOWN
    hours = opening_hours(
        {
            "twentyfourseven": False,
            "regular_hours": [
                {"weekday": 2, "period_begin": "08:00", "period_end": "12:00"},
                {"weekday": 1, "period_begin": "07:00", "period_end": "19:00"},
                {"weekday": 2, "period_begin": "13:00", "period_end": "18:00"},
                {"weekday": 9, "period_begin": "bad", "period_end": "x"},
                "junk",
            ],
        }
    )
    assert hours.availability is Availability.REGULAR
    assert [(d.weekday, d.periods) for d in hours.days] == [
        (1, (("07:00", "19:00"),)),
        (2, (("08:00", "12:00"), ("13:00", "18:00"))),
    ]


def test_csrf_tokens_belong_to_their_session() -> None:
    a, b = auth.session_csrf("stk_one"), auth.session_csrf("stk_two")
    assert a != b and len(a) == 64 and "stk_one" not in a


# --- over HTTP ---------------------------------------------------------------------------------


@pytest.fixture
async def web(server: Stekker) -> AsyncIterator[httpx.AsyncClient]:
    await users.create_user(server.ctx, "test", "admin", PASSWORD, Role.ADMIN)
    await users.create_user(server.ctx, "test", "helpdesk", PASSWORD, Role.HELPDESK)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}", timeout=30) as client:
        yield client


async def test_login_sets_a_safe_session_cookie_and_logout_ends_the_session(web: httpx.AsyncClient) -> None:
    anonymous = await web.get("/console/stations?q=x")
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/console/login?next=%2Fconsole%2Fstations%3Fq%3Dx"
    fragment = await web.get("/console/", headers={"HX-Request": "true"})
    assert fragment.status_code == 204 and fragment.headers["HX-Redirect"].startswith("/console/login")

    response = await http_login(web, "admin")
    assert response.status_code == 303 and response.headers["location"] == "/console/"
    cookie = response.headers["set-cookie"]
    assert "stekker_session=stk_" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie  # plain http on loopback; behind https it is set
    page = await web.get("/console/")
    assert page.status_code == 200 and "<h1>Overzicht</h1>" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert "script-src 'self'" in page.headers["content-security-policy"]
    english = await web.get("/console/?lang=en")
    assert "<h1>Dashboard</h1>" in english.text and 'lang="en"' in english.text
    assert "<h1>Dashboard</h1>" in (await web.get("/console/")).text  # remembered in a cookie

    refused = await web.post("/console/logout")  # no CSRF token
    assert refused.status_code == 403 and "did not come from this site" in refused.text
    assert (await web.get("/console/")).status_code == 200
    session = web.cookies["stekker_session"]
    done = await web.post("/console/logout", data={"csrf_token": csrf_of(page.text)})
    assert done.status_code == 303 and done.headers["location"] == "/console/login?bye=1"
    web.cookies.set("stekker_session", session)  # the old cookie is worthless: the token is revoked
    assert (await web.get("/console/")).status_code == 303


async def test_login_form_needs_its_csrf_token_and_same_origin(web: httpx.AsyncClient) -> None:
    no_token = await web.post("/console/login", data={"username": "admin", "password": PASSWORD})
    assert no_token.status_code == 403
    page = await web.get("/console/login")
    token = csrf_of(page.text)
    cross = await web.post(
        "/console/login",
        data={"csrf_token": token, "username": "admin", "password": PASSWORD},
        headers={"Origin": "https://evil.example"},
    )
    assert cross.status_code == 403 and "stekker_session" not in web.cookies
    weird = await web.post(
        "/console/login", content=b"\xff\xfe", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert weird.status_code in (400, 403)


async def test_a_strangers_failures_slow_only_the_stranger_and_say_nothing_of_the_name(
    web: httpx.AsyncClient, server: Stekker
) -> None:
    clock = [datetime(2026, 12, 7, 12, 0, tzinfo=UTC)]
    server.ctx.clock = lambda: clock[0]
    transport = httpx.AsyncHTTPTransport(local_address="127.0.0.2")  # another client address
    async with httpx.AsyncClient(base_url=str(web.base_url), transport=transport, timeout=30) as stranger:
        known = [await http_login(stranger, "admin", "wrong password") for _ in range(4)]
        unknown = [await http_login(stranger, "nobody", "wrong password") for _ in range(4)]
        for answers in (known, unknown):
            assert [r.status_code for r in answers] == [401, 401, 401, 429]
            assert "Onjuiste gebruikersnaam of wachtwoord." in answers[0].text
            assert "Te veel mislukte pogingen. Probeer het over 1 seconden opnieuw." in answers[3].text
            assert answers[3].headers["retry-after"] == "1"
        still = await http_login(stranger, "admin")  # even the right password waits its turn
        assert still.status_code == 429
        clock[0] += timedelta(seconds=1)
        assert (await http_login(stranger, "admin", "wrong again")).status_code == 401
        assert (await http_login(stranger, "admin")).headers["retry-after"] == "2"
        for _ in range(12):  # keep failing, each time the wait is over: it doubles up to 15 minutes
            clock[0] += timedelta(seconds=900)
            await http_login(stranger, "admin", "wrong again")
        capped = await http_login(stranger, "admin")
        assert capped.headers["retry-after"] == "900" and "15 minuten" in capped.text
    mine = await http_login(web, "admin")  # the admin, from their own address
    assert mine.status_code == 303


async def test_each_page_checks_the_role(web: httpx.AsyncClient) -> None:
    await http_login(web, "helpdesk")
    dashboard = await web.get("/console/")
    assert dashboard.status_code == 200 and 'href="/console/users"' not in dashboard.text
    denied = await web.get("/console/users")
    assert denied.status_code == 403 and "helpdesk" in denied.text and "<h1>Geen toegang</h1>" in denied.text
    web.cookies.clear()
    await http_login(web, "admin")
    listing = await web.get("/console/users")
    assert listing.status_code == 200 and "helpdesk" in listing.text
    assert 'href="/console/users"' in (await web.get("/console/")).text


async def _fleet(server: Stekker, count: int, location_name: str = "Plein") -> None:
    async def job(db: AsyncSession) -> None:
        place = Location(
            name=location_name,
            address="Hoofdstraat 1",
            city="Utrecht",
            latitude=Decimal("52.09"),
            longitude=Decimal("5.12"),
        )
        db.add(place)
        await db.flush()
        for n in range(count):
            db.add(ChargingStation(id=f"FLEET{n:05d}", location_id=place.id, online=n % 3 == 0))

    await server.ctx.write(job)


async def test_hostile_names_and_searches_are_escaped(web: httpx.AsyncClient, server: Stekker) -> None:
    await _fleet(server, 2, location_name=XSS)
    await http_login(web, "admin")
    listing = await web.get("/console/stations", params={"q": XSS})
    assert listing.status_code == 200
    assert "<script>alert" not in listing.text and "<img src=x" not in listing.text
    assert "&lt;script&gt;" in listing.text  # the search, echoed in its field, escaped
    everything = await web.get("/console/stations")
    assert "&lt;script&gt;alert" in everything.text and "<script>alert" not in everything.text
    detail = await web.get("/console/stations/FLEET00000")
    assert detail.status_code == 200 and "&lt;img src=x" in detail.text and "<img src=x" not in detail.text
    for path in ("/console/stations/%3Cscript%3E", "/p/%3Cscript%3E", "/console/stations?status=<b>"):
        answer = await web.get(path)
        assert answer.status_code in (400, 404) and "<script>" not in answer.text and "<b>" not in answer.text
    wildcard = await web.get("/console/stations", params={"q": "%"})
    assert "0 laadpalen" in wildcard.text  # LIKE wildcards are searched for, not obeyed


async def test_a_large_fleet_pages_by_key_and_filters(web: httpx.AsyncClient, server: Stekker) -> None:
    await _fleet(server, 120)
    await http_login(web, "admin")
    first = await web.get("/console/stations")
    assert "120 laadpalen" in first.text
    ids = re.findall(r'data-station="([^"]+)"', first.text)
    assert ids == [f"FLEET{n:05d}" for n in range(50)]
    assert 'rel="prev"' not in first.text
    seen = list(ids)
    page = first
    while 'rel="next"' in page.text:
        found = re.search(r'href="([^"]+)" rel="next"', page.text)
        assert found is not None
        page = await web.get(found.group(1).replace("&amp;", "&"))
        seen += re.findall(r'data-station="([^"]+)"', page.text)
    assert seen == [f"FLEET{n:05d}" for n in range(120)]
    back = re.search(r'href="([^"]+)" rel="prev"', page.text)
    assert back is not None
    previous = await web.get(back.group(1).replace("&amp;", "&"))
    assert re.findall(r'data-station="([^"]+)"', previous.text) == [f"FLEET{n:05d}" for n in range(50, 100)]

    online = await web.get("/console/stations", params={"status": "online"})
    assert "40 laadpalen" in online.text
    searched = await web.get("/console/stations", params={"q": "fleet0011", "location": "utrecht"})
    assert re.findall(r'data-station="([^"]+)"', searched.text) == [f"FLEET{n:05d}" for n in range(110, 120)]

    async def fault(db: AsyncSession) -> None:
        await db.execute(
            update(ChargingStation).where(ChargingStation.id == "FLEET00007").values(status="Faulted")
        )

    await server.ctx.write(fault)
    faulted = await web.get("/console/stations", params={"status": "faulted"})
    assert re.findall(r'data-station="([^"]+)"', faulted.text) == ["FLEET00007"]
    dashboard = await web.get("/console/", headers={"HX-Request": "true"})
    assert re.search(r'id="count-total">120<', dashboard.text)
    assert re.search(r'id="count-online">40<', dashboard.text)
    assert re.search(r'id="count-faulted">1<', dashboard.text)
    assert "(80)" in dashboard.text  # offline, never connected: longer than the threshold


async def test_the_live_stream_tells_what_changed_and_ends_at_shutdown(
    web: httpx.AsyncClient, server: Stekker
) -> None:
    import asyncio

    from stekker.bus import Event
    from stekker.web import live

    assert (await web.get("/console/events")).status_code == 303  # not without a session
    await http_login(web, "helpdesk")
    lines: list[str] = []

    async def listen() -> None:
        async with web.stream("GET", "/console/events") as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            async for line in response.aiter_lines():
                lines.append(line)

    reader = asyncio.create_task(listen())
    for _ in range(100):
        if ": connected" in lines:
            break
        await asyncio.sleep(0.05)
    for n in range(50):  # a burst: coalesced into one message
        await server.ctx.bus.publish(Event("station.status", {"station_id": f"S{n}", "status": "Available"}))
    for _ in range(100):
        if "event: station" in lines:
            break
        await asyncio.sleep(0.05)
    live.stop(server._http.config.app if server._http is not None else None)
    await asyncio.wait_for(reader, 5)  # the stream ended by itself
    assert lines.count("event: station") == 1 and "event: session" not in lines
