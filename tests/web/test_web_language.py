"""The console speaks one language at a time: in real headless Chromium, each role visits every
page its menu offers, plus a station (with its tabs and timeline), sessions, a CDR, a tariff, a
token, a job and a helpdesk flow, in Dutch and in English; a Dutch page may show no English
word and no `0.35 kWh`, an English page no Dutch word (`tests/web/language.py` says how a
word is judged). The data is made the way it happens: a simulated station charges, is started
and stopped remotely, a tariff goes through the municipality's approval, a bulk job runs and
the helpdesk releases a plug.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import select

from stekker.app import Stekker
from stekker.db.base import utcnow
from stekker.db.models import ChargingSession, Evse, Token
from stekker.db.models_users import Role
from stekker.services import cdrs, inventory, jobs, remote, tariffs, tokens, users
from stekker.services.selection import Selection
from stekker.services.tariffs import Draft
from stekker.sim import SimulatedStation, SimulatedStation201
from tests.conftest import make_settings
from tests.observe import eventually
from tests.web.conftest import PASSWORD, base_url, csrf_of, screenshot
from tests.web.language import Vocabulary, context_of, visible_text

pytestmark = pytest.mark.asyncio(loop_scope="module")

#: people, not role names, so a user name is not mistaken for an English word
PEOPLE = {
    "anne": Role.ADMIN,
    "bram": Role.OPERATOR,
    "carla": Role.HELPDESK,
    "dirk": Role.MUNICIPALITY,
    "eva": Role.READ_ONLY,
}
STATION = "CP042"
STATION_201 = "CP043"  # OCPP 2.0.1: its reports and transaction events word the same way
CARD = "04A1B2C3D4E5"
CARD_201 = "04A1B2C3D4E6"
STATION_PASSWORD = "cp042-station-secret"
ENERGY = {"type": "ENERGY", "price": "0.35", "vat": "21", "step_size": 1}
TARIFF = {
    "elements": [
        {
            "price_components": [
                ENERGY,
                {"type": "PARKING_TIME", "price": "1.20", "vat": "21", "step_size": 60},
            ]
        }
    ],
}


@dataclass(frozen=True, slots=True)
class World:
    """What the pages are about."""

    stopped_session: int
    running_session: int
    cdr_uid: str
    token_id: int
    job_id: int
    flow_id: str
    evse_uid: str


class OffsetClock:
    """The server's clock, moved by the test (so a tariff can be approved "before" it starts)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> Any:
        return utcnow() + self.offset


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def language_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stekker]:
    path = tmp_path_factory.mktemp("language") / "stekker.db"
    app = Stekker(make_settings(f"sqlite+aiosqlite:///{path}"))
    await app.start()
    try:
        for name, role in PEOPLE.items():
            await users.create_user(app.ctx, "test", name, PASSWORD, role)
        yield app
    finally:
        await app.stop()


async def _approved_tariff(server: Stekker) -> None:
    """A tariff the operator proposed and the municipality approved, in effect since an hour ago."""
    clock = OffsetClock()
    server.ctx.clock = clock
    try:
        start = utcnow() - timedelta(hours=1)
        clock.offset = timedelta(hours=-2)
        draft = Draft(content=TARIFF, parking_grace_minutes=5, effective_from=start, note="Ref. 2026-117")
        await tariffs.create_tariff(
            server.ctx, actor="user:bram", code="UTR", name="Utrecht centrum", currency="EUR", draft=draft
        )
        await tariffs.submit(server.ctx, actor="user:bram", code="UTR", version=1)
        await tariffs.approve(
            server.ctx,
            actor="user:dirk",
            role=Role.MUNICIPALITY,
            code="UTR",
            version=1,
            comment="Ref. 2026-117",
        )
    finally:
        server.ctx.clock = utcnow
    assert await tariffs.activate_due(server.ctx) == 1


@contextlib.asynccontextmanager
async def running(station: SimulatedStation | SimulatedStation201) -> AsyncIterator[None]:
    task = asyncio.create_task(station.run())
    try:
        await station.wait_online(timeout=10)
        yield
    finally:
        await station.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 5)


async def _session_ids(server: Stekker) -> list[tuple[int, str]]:
    async with server.ctx.db() as db:
        rows = await db.execute(
            select(ChargingSession.id, ChargingSession.status)
            .where(ChargingSession.station_id == STATION)
            .order_by(ChargingSession.id)
        )
        return [(row[0], str(row[1])) for row in rows]


async def _make_world(server: Stekker, station: SimulatedStation) -> World:
    ctx = server.ctx
    # a session charged and stopped at the station, billed
    assert await station.start_session(1, CARD) is not None
    await asyncio.sleep(2.5)  # a few meter values
    await station.stop_session(1)
    [(stopped, _)] = await eventually(lambda: _session_ids(server))
    await eventually(lambda: _completed(server, stopped))
    cdr = await cdrs.build_cdr(ctx, stopped)
    assert cdr is not None
    # one started from the console's side (audited), still charging
    await remote.remote_start(ctx, "user:carla", STATION, CARD, 2)
    running = (await eventually(lambda: _running(server)))[0]
    # a bulk job that has run
    job_id = await jobs.create_job(
        ctx,
        "user:bram",
        jobs.JobRequest("get_local_list_version", {}, Selection(station_ids=(STATION,))),
    )
    await eventually(lambda: _job_done(server, job_id))
    # the helpdesk releases the plug of EVSE 2 (the station stops and unlocks at once)
    flow_id = await _stop_and_release(server)
    running_after = await _running(server)
    # and the driver starts again, so a session runs while the pages are read
    assert await station.start_session(1, CARD) is not None
    running = (await eventually(lambda: _running(server, besides=running_after)))[0]
    async with ctx.db() as db:
        token_id = (await db.execute(select(Token.id).where(Token.uid == CARD))).scalar_one()
        evse_uid = (
            (await db.execute(select(Evse.evse_id).where(Evse.station_id == STATION))).scalars().first()
        )
    assert evse_uid is not None
    return World(stopped, running, cdr.cdr_uid, token_id, job_id, flow_id, evse_uid)


async def _completed(server: Stekker, session_id: int) -> bool:
    return any(s == session_id and status != "active" for s, status in await _session_ids(server))


async def _running(server: Stekker, besides: list[int] | None = None) -> list[int]:
    return [s for s, status in await _session_ids(server) if status == "active" and s not in (besides or [])]


async def _job_done(server: Stekker, job_id: int) -> bool:
    return (await jobs.get_job(server.ctx, job_id)).state == "completed"


async def _stop_and_release(server: Stekker) -> str:
    """Start the helpdesk's stop-and-release on the remote-started session, as the helpdesk does
    (the console's form), and wait until it is done."""
    [session_id] = await _running(server)
    async with httpx.AsyncClient(base_url=base_url(server), timeout=30) as web:
        page = await web.get("/console/login")
        login = await web.post(
            "/console/login",
            data={
                "csrf_token": csrf_of(page.text),
                "username": "carla",
                "password": PASSWORD,
                "next": "/console/",
            },
        )
        assert login.status_code == 303
        csrf = csrf_of((await web.get("/console/helpdesk")).text)
        started = await web.post(
            "/console/helpdesk/stop",
            data={"csrf_token": csrf, "session_id": str(session_id), "confirmed": "yes"},
        )
        assert started.status_code == 303, started.text
        flow_id = started.headers["location"].rsplit("/", 1)[-1]

        async def done() -> bool:
            shown = await web.get(f"/console/helpdesk/flows/{flow_id}")
            return 'data-status="running"' not in shown.text.split("<ol", 1)[0]

        await eventually(done, timeout=60)
    return flow_id


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(language_server: Stekker) -> AsyncIterator[World]:
    ctx = language_server.ctx
    location = await inventory.create_location(
        ctx,
        "user:bram",
        {
            "name": "Stationsplein",
            "address": "Stationsplein 1",
            "city": "Utrecht",
            "latitude": 52.089,
            "longitude": 5.11,
        },
    )
    await inventory.register_station(
        ctx,
        "user:bram",
        inventory.StationInput(STATION, password=STATION_PASSWORD, evse_count=2, location_id=location.id),
    )
    await inventory.register_station(
        ctx,
        "user:bram",
        inventory.StationInput(STATION_201, password=STATION_PASSWORD, evse_count=2, location_id=location.id),
    )
    await tokens.upsert_token(ctx, "user:bram", tokens.TokenInput(CARD, visual_number="NL-STK-000123-4"))
    await tokens.upsert_token(ctx, "user:bram", tokens.TokenInput(CARD_201, visual_number="NL-STK-000124-2"))
    await _approved_tariff(language_server)
    url = f"ws://127.0.0.1:{language_server.ocpp_port}/ocpp"
    station = SimulatedStation(STATION, url, password=STATION_PASSWORD, meter_interval=1, unplug_delay=0.1)
    station_201 = SimulatedStation201(
        STATION_201, url, password=STATION_PASSWORD, tx_updated_interval=1, unplug_delay=0.1
    )
    async with running(station), running(station_201):
        # a 2.0.1 session that charged and stopped
        assert await station_201.start_session(1, CARD_201) is not None
        await asyncio.sleep(1.5)
        await station_201.stop_session(1)
        yield await _make_world(language_server, station)


def _pages(w: World) -> list[str]:
    """The pages besides the menu: one of each kind of record."""
    station = f"/console/stations/{STATION}"
    return [
        station,
        f"{station}/configuration",
        f"{station}/functions",
        f"{station}/timeline",
        f"{station}/timeline?hours=6&messages=true",
        f"/console/sessions/{w.stopped_session}",
        f"/console/sessions/{w.running_session}",
        f"/console/cdrs/{w.cdr_uid}",
        "/console/tariffs/UTR",
        "/console/tariffs/UTR/versions/1",
        f"/console/tokens/{w.token_id}",
        f"/console/jobs/{w.job_id}",
        f"/console/helpdesk/flows/{w.flow_id}",
        f"/console/helpdesk?q={STATION}",
        f"/console/stations/{STATION_201}",
        f"/console/stations/{STATION_201}/configuration",
        f"/console/stations/{STATION_201}/timeline",
    ]


async def _log_in(browser: Any, server: Stekker, name: str, lang: str, **context: Any) -> Any:
    ctx = await browser.new_context(base_url=base_url(server), **context)
    page = await ctx.new_page()
    await page.goto(f"/console/login?lang={lang}")
    await page.locator("#username").fill(name)
    await page.locator("#password").fill(PASSWORD)
    await page.locator("form button[type=submit]").click()
    await page.wait_for_url("**/console/")
    return page


async def test_every_page_speaks_only_the_language_the_user_chose(
    browser: Any, language_server: Stekker, world: World
) -> None:
    vocabulary = Vocabulary.from_catalogue()
    problems: list[str] = []
    seen = 0
    for name, role in PEOPLE.items():
        for lang in ("nl", "en"):
            page = await _log_in(browser, language_server, name, lang)
            try:
                menu = await page.eval_on_selector_all(
                    "header nav a[href^='/console/']:not([hreflang])",
                    "links => links.map(a => a.getAttribute('href'))",
                )
                assert menu, f"{name}: no menu"
                for path in [*dict.fromkeys(menu), *_pages(world), f"/p/{world.evse_uid}"]:
                    response = await page.goto(path)
                    if response is None or response.status >= 500:
                        problems.append(f"{role.value} {lang} {path}: the page failed")
                        continue
                    if await page.locator("html").get_attribute("lang") != lang:
                        problems.append(f"{role.value} {lang} {path}: <html lang> is not {lang}")
                    text = await visible_text(page, lang)
                    seen += 1
                    for word in vocabulary.foreign(lang, text):
                        problems.append(f"{role.value} {lang} {path}: {word!r} in “{context_of(text, word)}”")
            finally:
                await page.context.close()
    assert seen >= 5 * 2 * 20
    assert not problems, f"{len(problems)} words in the wrong language:\n" + "\n".join(problems)


async def test_the_word_lists_judge_words_not_data() -> None:  # async: the module is marked asyncio
    vocabulary = Vocabulary.from_catalogue()
    assert vocabulary.foreign("nl", "laadsessie 9 gestopt (aan de laadpaal, 0,35 kWh)") == []
    assert vocabulary.foreign("nl", "8.486.000 Wh") == []  # a point between thousands is Dutch
    assert vocabulary.foreign("nl", "session 9 stopped (Local, 0.35 kWh)") == [
        "session",
        "stopped",
        "Local",
        "0.35 kWh",
    ]
    assert vocabulary.foreign("nl", "Status: Charging, € 1.234,56 en € 0.42") == ["Charging", "€ 0.42"]
    assert vocabulary.foreign("en", "session 9 stopped (at the station, 0,35 kWh)") == []
    assert vocabulary.foreign("en", "Laadsessie 9 gestopt") == ["Laadsessie", "gestopt"]
    # names and codes pass: a station id, a card number, a place, the product
    assert vocabulary.foreign("nl", "CP042 NL*STK*ECP042*1 04A1B2C3D4E5 Utrecht Stekker") == []
    assert vocabulary.foreign("en", "CP042 NL*STK*ECP042*1 04A1B2C3D4E5 Utrecht Stekker") == []
    # letters inside a code with digits are not words (a pseudonym, a station id)
    assert vocabulary.foreign("en", "p:2da763638a2c34c985728de9 TAAL1") == []
    assert vocabulary.foreign("nl", "PARKING_TIME: 0") == ["PARKING"]  # "time-out" is Dutch too


async def test_screenshots_of_the_pages_with_translated_records(
    browser: Any, language_server: Stekker, world: World
) -> None:
    pages = {
        "timeline": f"/console/stations/{STATION}/timeline",
        "audit": "/console/audit",
        "session": f"/console/sessions/{world.stopped_session}",
        "cdr": f"/console/cdrs/{world.cdr_uid}",
        "flow": f"/console/helpdesk/flows/{world.flow_id}",
        "station": f"/console/stations/{STATION}",
    }
    for lang in ("nl", "en"):
        for width in (1280, 390):
            page = await _log_in(
                browser, language_server, "anne", lang, viewport={"width": width, "height": 900}
            )
            try:
                for name, path in pages.items():
                    await page.goto(path)
                    await screenshot(page, f"console-words-{name}-{lang}-{width}")
            finally:
                await page.context.close()
