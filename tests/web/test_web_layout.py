"""Every console page fits the window, on a phone (390 px) and on a desktop (1280 px): the page
itself never scrolls sideways; wide tables scroll in their own box, long ids and values wrap,
the menu folds up on a phone. In headless Chromium, as admin on every page and as the
helpdesk on the helpdesk's and station pages (the engineer in the field), with data that
makes pages wide: a long station id, a long location name, a configuration value of 300
characters without a space, a session, its CDR, a tariff, a job, a helpdesk flow.

The list of pages is checked against the console's routes, so a page added later without
being listed here fails this test. Screenshots of each page at both widths, the main ones in
Dutch and English, go to .cache/screenshots/layout-*.png."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.app import Stekker
from stekker.db.models import ChargingSession, ChargingStation, Location, StationVariable
from stekker.db.models_tariffs import Cdr
from stekker.services import jobs, tokens
from stekker.services.selection import Selection
from stekker.services.tariffs import seed_demo_tariff
from stekker.sim import SimulatedStation
from stekker.web import router as console_router
from tests.web.conftest import axe_violations, base_url, csrf_of, http_login, login_page, screenshot

pytestmark = pytest.mark.asyncio(loop_scope="module")

STATION = "NL*STK*LAYOUT-STATION-WITH-A-LONG-ID-000001"
CARD = "04AB12CD34EF5678"
SECOND_CARD = "04AB12CD34EF9999"
LONG_VALUE = "https://backoffice.example.nl/ocpp/" + "a1b2c3d4e5" * 27  # 300 characters, no space
PLACE = "Parkeergarage Stationsplein-Zuid onder het Jaarbeursplein, ingang Croeselaan"
WIDTHS = (390, 1280)

#: Console pages not in the table below, and why.
NOT_PAGES = {
    "/console/events",  # the live-update stream (text/event-stream)
    "/console/jobs/diagnostics/{request_id}/file",  # a download
    "/console/helpdesk/problems/open",  # a fragment of the helpdesk page
    "/console/map/stations",  # the map's stations as JSON
}


@dataclass(frozen=True, slots=True)
class Seeded:
    """What the pages show: ids of rows made for them."""

    session_id: int
    cdr_uid: str
    job_id: int
    token_id: int
    flow_path: str


def _console_get_pages() -> set[str]:
    """The path templates of the console's HTML pages (GET), from its routes."""
    app = FastAPI()
    app.include_router(console_router)
    found: set[str] = set()

    def walk(routes: list[Any]) -> Iterator[tuple[str, set[str]]]:
        for route in routes:
            contexts = getattr(route, "effective_route_contexts", None)
            if contexts is not None:  # FastAPI >= 0.160: included routers are resolved lazily
                for c in contexts():
                    yield c.path, set(c.methods or ())
            elif hasattr(route, "path"):
                yield route.path, set(getattr(route, "methods", None) or ())

    for path, methods in walk(app.routes):
        if path.startswith("/console") and "GET" in methods:
            found.add(path)
    return found - NOT_PAGES


@contextlib.asynccontextmanager
async def _running(station: SimulatedStation) -> AsyncIterator[SimulatedStation]:
    task = asyncio.create_task(station.run())
    try:
        await station.wait_online(timeout=15)
        yield station
    finally:
        await station.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 5)


async def _eventually(check: Any, timeout: float = 20.0) -> Any:
    for _ in range(int(timeout / 0.2)):
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.2)
    raise AssertionError("the data for the pages did not appear")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def seeded(web_server: Stekker) -> AsyncIterator[Seeded]:
    ctx = web_server.ctx
    await seed_demo_tariff(ctx)
    token_id = (
        await tokens.upsert_token(
            ctx, "test", tokens.TokenInput(CARD, visual_number="NL-STK-C12345678-9-LONG-VISUAL-NUMBER")
        )
    ).id
    await tokens.upsert_token(ctx, "test", tokens.TokenInput(SECOND_CARD, visual_number="NL-STK-C12345679-2"))
    station = SimulatedStation(STATION, f"ws://127.0.0.1:{web_server.ocpp_port}/ocpp", unplug_delay=0.1)
    async with _running(station):

        async def place(db: AsyncSession) -> None:
            where = Location(
                name=PLACE,
                address="Croeselaan 1",
                city="Utrecht",
                latitude=Decimal("52.0894"),
                longitude=Decimal("5.1100"),
            )
            db.add(where)
            await db.flush()
            await db.execute(
                update(ChargingStation).where(ChargingStation.id == STATION).values(location_id=where.id)
            )
            db.add(
                StationVariable(
                    station_id=STATION,
                    component="OCPP16",
                    variable="CentralSystemUrlWithAVeryLongName",
                    value=LONG_VALUE,
                    mutability="ReadWrite",
                    source="GetConfiguration",
                )
            )

        await web_server.ctx.write(place)
        # a finished session (and its CDR), and one that runs for the helpdesk to stop
        await _eventually(lambda: station.start_session(1, CARD))
        await station.send_meter_values(1)
        await station.stop_session(1)
        await _eventually(lambda: station.start_session(2, SECOND_CARD))

        async def sessions() -> tuple[int, str] | None:
            async with ctx.db() as db:
                cdr = (await db.execute(select(Cdr.cdr_uid, Cdr.session_id).limit(1))).first()
            return (cdr[1], cdr[0]) if cdr is not None else None

        session_id, cdr_uid = await _eventually(sessions)
        job_id = await jobs.create_job(
            ctx,
            "test",
            jobs.JobRequest("reset", {"type": "Soft"}, Selection(station_ids=(STATION,))),
        )
        async with httpx.AsyncClient(base_url=base_url(web_server)) as web:
            await http_login(web, "helpdesk")
            async with ctx.db() as db:
                running = (
                    await db.execute(
                        select(ChargingSession.id).where(
                            ChargingSession.station_id == STATION, ChargingSession.evse_number == 2
                        )
                    )
                ).scalar_one()
            page = await web.get("/console/helpdesk", params={"q": STATION})
            flow = await web.post(
                "/console/helpdesk/stop",
                data={"csrf_token": csrf_of(page.text), "session_id": str(running), "confirmed": "yes"},
            )
            assert flow.status_code == 303, flow.text
        yield Seeded(session_id, cdr_uid, job_id, token_id, flow.headers["location"])


def _pages(seeded: Seeded) -> dict[str, str]:
    """Path template → the page visited for it (those the console has)."""
    routes = _console_get_pages()
    st = STATION.replace("*", "%2A")
    pages = {
        "/console/": "/console/",
        "/console/login": "/console/login",
        "/console/stations": "/console/stations",
        "/console/stations/{station_id}": f"/console/stations/{st}",
        "/console/stations/{station_id}/functions": f"/console/stations/{st}/functions",
        "/console/stations/{station_id}/functions/{name}/confirm": (
            f"/console/stations/{st}/functions/reset/confirm?type=Soft"
        ),
        "/console/stations/{station_id}/configuration": f"/console/stations/{st}/configuration",
        "/console/stations/{station_id}/configuration/confirm": (
            f"/console/stations/{st}/configuration/confirm?label=CentralSystemUrlWithAVeryLongName"
            f"&value={LONG_VALUE}"
        ),
        "/console/stations/{station_id}/timeline": f"/console/stations/{st}/timeline",
        "/console/helpdesk": f"/console/helpdesk?q={st}",
        "/console/helpdesk/flows/{flow_id}": seeded.flow_path,
        "/console/sessions": "/console/sessions",
        "/console/sessions/{session_id}": f"/console/sessions/{seeded.session_id}",
        "/console/cdrs": "/console/cdrs",
        "/console/cdrs/{cdr_uid}": f"/console/cdrs/{seeded.cdr_uid}",
        "/console/tariffs": "/console/tariffs",
        "/console/tariffs/new": "/console/tariffs/new",
        "/console/tariffs/caps": "/console/tariffs/caps",
        "/console/tariffs/{code}": "/console/tariffs/DEMO",
        "/console/tariffs/{code}/draft": "/console/tariffs/DEMO/draft",
        "/console/tariffs/{code}/versions/{version}": "/console/tariffs/DEMO/versions/1",
        "/console/jobs": "/console/jobs",
        "/console/jobs/diagnostics": "/console/jobs/diagnostics",
        "/console/jobs/{job_id}": f"/console/jobs/{seeded.job_id}",
        "/console/jobs/{job_id}/cancel": f"/console/jobs/{seeded.job_id}/cancel",
        "/console/tokens": "/console/tokens",
        "/console/tokens/{token_id}": f"/console/tokens/{seeded.token_id}",
        "/console/audit": "/console/audit",
        "/console/exports": "/console/exports",
        "/console/users": "/console/users",
        "/console/helpdesk/problems": "/console/helpdesk/problems?all=1",
    }
    return {template: path for template, path in pages.items() if template in routes}


#: The pages the helpdesk uses in the field, and the main pages photographed in both languages.
HELPDESK = (
    "/console/",
    "/console/helpdesk",
    "/console/helpdesk/flows/{flow_id}",
    "/console/stations",
    "/console/stations/{station_id}",
    "/console/stations/{station_id}/timeline",
    "/console/sessions/{session_id}",
)
#: Pages the admin does not see: the login form (nobody is logged in), the price caps (the
#: municipality decides them).
OTHER_ROLES = {"/console/login": None, "/console/tariffs/caps": "municipality"}
BOTH_LANGUAGES = {
    "/console/",
    "/console/stations",
    "/console/stations/{station_id}",
    "/console/stations/{station_id}/configuration",
    "/console/helpdesk",
    "/console/sessions/{session_id}",
}

#: What is wider than the window, if anything: the widest elements that stick out.
OVERFLOW = """() => {
  const width = window.innerWidth;
  if (document.documentElement.scrollWidth <= width) return null;
  const out = [];
  for (const el of document.querySelectorAll("body *")) {
    const box = el.getBoundingClientRect();
    if (box.right > width + 1 && box.width > 0) {
      let scrolls = false;
      for (let up = el.parentElement; up; up = up.parentElement) {
        const style = getComputedStyle(up);
        const fits = up.getBoundingClientRect().right <= width + 1;
        if (["auto", "scroll", "hidden"].includes(style.overflowX) && fits) { scrolls = true; break; }
      }
      const name = el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + "." + el.className;
      if (!scrolls) out.push(name + " " + Math.round(box.right));
    }
  }
  return {scrollWidth: document.documentElement.scrollWidth, width, culprits: out.slice(0, 6)};
}"""


def _name(template: str) -> str:
    slug = re.sub(r"[{}]", "", template.removeprefix("/console")).strip("/").replace("/", "-")
    return slug or "dashboard"


async def _visit(page: Any, path: str, shot: str) -> Any:
    response = await page.goto(path)
    assert response is not None and response.status == 200, (path, response and response.status)
    await page.wait_for_load_state("load")
    found = await page.evaluate(OVERFLOW)
    await screenshot(page, shot)
    return found


async def test_every_console_page_is_listed(seeded: Seeded) -> None:
    assert set(_pages(seeded)) == _console_get_pages()


async def test_every_page_fits_a_phone_and_a_desktop_as_admin(
    browser: Any, web_server: Stekker, seeded: Seeded
) -> None:
    pages = {k: v for k, v in _pages(seeded).items() if k not in OTHER_ROLES}
    wide: dict[str, Any] = {}
    for width in WIDTHS:
        page = await login_page(browser, web_server, "admin", viewport={"width": width, "height": 844})
        try:
            for template, path in pages.items():
                for lang in ("nl", "en") if template in BOTH_LANGUAGES else ("nl",):
                    url = f"{path}{'&' if '?' in path else '?'}lang={lang}"
                    found = await _visit(page, url, f"layout-{_name(template)}-{width}-{lang}")
                    if found:
                        wide[f"{template} {width} {lang}"] = found
            await page.goto("/console/?lang=nl")
        finally:
            await page.context.close()
    assert wide == {}


async def test_the_login_caps_and_helpdesk_pages_fit_a_phone(
    browser: Any, web_server: Stekker, seeded: Seeded
) -> None:
    from playwright.async_api import expect

    pages = _pages(seeded)
    wide: dict[str, Any] = {}
    for width in WIDTHS:
        context = await browser.new_context(
            base_url=base_url(web_server), viewport={"width": width, "height": 844}
        )
        try:
            login = await context.new_page()
            found = await _visit(login, "/console/login", f"layout-login-{width}-nl")
            if found:
                wide[f"login {width}"] = found
        finally:
            await context.close()
        page = await login_page(browser, web_server, "municipality", viewport={"width": width, "height": 844})
        try:
            found = await _visit(page, pages["/console/tariffs/caps"], f"layout-tariffs-caps-{width}-nl")
            if found:
                wide[f"caps {width}"] = found
        finally:
            await page.context.close()
        page = await login_page(browser, web_server, "helpdesk", viewport={"width": width, "height": 844})
        try:
            for template in HELPDESK:
                found = await _visit(page, pages[template], f"layout-helpdesk-{_name(template)}-{width}-nl")
                if found:
                    wide[f"{template} {width}"] = found
            # the menu folds up on a phone and opens with its button
            await page.goto("/console/helpdesk")
            menu = page.get_by_role("navigation", name="Hoofdmenu")
            toggle = page.get_by_role("button", name="Menu")
            if width < 600:
                await expect(menu.get_by_role("link", name="Laadpalen")).to_be_hidden()
                await expect(toggle).to_have_attribute("aria-expanded", "false")
                await toggle.click()
                await expect(toggle).to_have_attribute("aria-expanded", "true")
                await expect(menu.get_by_role("link", name="Laadpalen")).to_be_visible()
                await screenshot(page, f"layout-helpdesk-menu-open-{width}-nl")
                await menu.get_by_role("link", name="Laadpalen").click()
                await page.wait_for_url("**/console/stations")
            else:
                await expect(toggle).to_be_hidden()
                await expect(menu.get_by_role("link", name="Laadpalen")).to_be_visible()
        finally:
            await page.context.close()
    assert wide == {}


async def test_the_helpdesk_on_a_phone_passes_axe(browser: Any, web_server: Stekker, seeded: Seeded) -> None:
    pages = _pages(seeded)
    page = await login_page(
        browser, web_server, "helpdesk", viewport={"width": 390, "height": 844}, bypass_csp=True
    )
    try:
        found = {}
        for template in HELPDESK:
            await page.goto(pages[template])
            await page.wait_for_load_state("load")
            found[template] = [
                (v["id"], [n["target"] for n in v["nodes"]][:3]) for v in await axe_violations(page)
            ]
        await page.get_by_role("button", name="Menu").click()
        found["menu open"] = [(v["id"], []) for v in await axe_violations(page)]
        assert {k: v for k, v in found.items() if v} == {}
    finally:
        await page.context.close()
