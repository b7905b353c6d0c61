"""The helpdesk screen (requirement 152) and the station pages in real headless Chromium,
plus the helpdesk's view logic over HTTP: one search box finds the session by what the driver
reads out; "stop and release" shows each step of the flow as it happens, here at a simulated
station that ignores the first stop; who may do it; CSRF and hostile input; axe-core scans
and screenshots of the helpdesk page and the station pages."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from ocpp.v16 import call_result
from ocpp.v16.enums import Action
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.app import Stekker
from stekker.db.models import ChargingStation, Location
from stekker.services import inventory, stop_release, tokens
from stekker.services.stop_release import FlowTiming
from stekker.sim import SimulatedStation
from stekker.sim.link import handles
from tests.web.conftest import axe_violations, base_url, csrf_of, http_login, login_page, screenshot

pytestmark = pytest.mark.asyncio(loop_scope="module")

XSS = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=1</script>'
# The station ignores the first stop: the flow waits `stop_wait`, then unlocks (which ends
# the session at this station) and checks.
TIMING = FlowTiming(total=40, stop_wait=2, settle=5, boot_wait=5)


class FirstStopIgnored(SimulatedStation):
    """A simulated station that says yes to the first remote stop and does nothing."""

    ignored = 0

    @handles(Action.remote_stop_transaction)
    def on_remote_stop_transaction(
        self, transaction_id: int, call_unique_id: str, **kwargs: Any
    ) -> call_result.RemoteStopTransaction:
        if self.ignored == 0:
            self.ignored += 1
            return call_result.RemoteStopTransaction(status="Accepted")
        return super().on_remote_stop_transaction(transaction_id, call_unique_id, **kwargs)


@pytest.fixture
def short_flows(monkeypatch: pytest.MonkeyPatch) -> Iterator[FlowTiming]:
    monkeypatch.setattr(stop_release, "DEFAULT_TIMING", TIMING)
    yield TIMING


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


def ocpp_url(server: Stekker) -> str:
    return f"ws://127.0.0.1:{server.ocpp_port}/ocpp"


async def _card(server: Stekker, uid: str, visual: str) -> None:
    await tokens.upsert_token(server.ctx, "test", tokens.TokenInput(uid, visual_number=visual))


@contextlib.asynccontextmanager
async def client(server: Stekker, role: str) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    async with httpx.AsyncClient(base_url=base_url(server), timeout=30) as web:
        assert (await http_login(web, role)).status_code == 303
        yield web, csrf_of((await web.get("/console/")).text)


# ---- over HTTP --------------------------------------------------------------------------------


async def test_search_roles_csrf_and_hostile_input(web_server: Stekker, short_flows: FlowTiming) -> None:
    await _card(web_server, "04A1B2C3D4E5F6", "NL-STK-000123-4")
    station = SimulatedStation("HDW1", ocpp_url(web_server), unplug_delay=0.1)
    async with running(station):
        assert await station.start_session(1, "04A1B2C3D4E5F6") is not None
        async with client(web_server, "helpdesk") as (web, csrf):
            for q in ("HDW1", "1234", "D4E5F6"):
                found = await web.get("/console/helpdesk", params={"q": q})
                assert found.status_code == 200 and "Laadt nu" in found.text, q
                assert "****E5F6" in found.text and "04A1B2C3D4E5F6" not in found.text  # masked
            sticker = await web.get("/console/helpdesk", params={"q": "HDW1/1"})
            assert "Stoppen en vrijgeven" in sticker.text
            session_id = re.search(r'name="session_id" value="(\d+)"', sticker.text)
            assert session_id is not None
            assert (await web.get("/console/stations/HDW1/configuration/confirm")).status_code == 403
            no_token = await web.post("/console/helpdesk/stop", data={"session_id": session_id.group(1)})
            assert no_token.status_code == 403
            hostile = await web.get("/console/helpdesk", params={"q": XSS})
            assert (
                hostile.status_code == 400
                and "<script>" not in hostile.text
                and "&lt;script&gt;" in hostile.text
            )
            missing = await web.post(
                "/console/helpdesk/stop", data={"csrf_token": csrf, "session_id": "999999"}
            )
            assert missing.status_code == 404
            bad = await web.post("/console/helpdesk/stop", data={"csrf_token": csrf, "session_id": "x"})
            assert bad.status_code == 400
            half = await web.post("/console/helpdesk/stop", data={"csrf_token": csrf, "station_id": "HDW1"})
            assert half.status_code == 400
            assert (await web.get("/console/helpdesk/flows/" + "0" * 32)).status_code == 404
            assert (await web.get("/console/helpdesk/flows/../../etc")).status_code in (400, 404)
            # the button asks first: what it will do, to whose session; nothing started yet
            asked = await web.post(
                "/console/helpdesk/stop", data={"csrf_token": csrf, "session_id": session_id.group(1)}
            )
            assert asked.status_code == 200 and "Bevestigen: stoppen en vrijgeven" in asked.text
            assert 'name="confirmed" value="yes"' in asked.text and "****E5F6" in asked.text
            assert station.active_transactions() != {}
            confirmed = {"csrf_token": csrf, "session_id": session_id.group(1), "confirmed": "yes"}
            started = await web.post("/console/helpdesk/stop", data=confirmed)
            assert started.status_code == 303 and started.headers["location"].startswith(
                "/console/helpdesk/flows/"
            )
            again = await web.post("/console/helpdesk/stop", data=confirmed)
            assert again.status_code == 409  # one flow per connector at a time
            fragment = await web.get(started.headers["location"], headers={"HX-Request": "true"})
            assert fragment.text.lstrip().startswith('<div id="flow"')
            for _ in range(80):
                page = await web.get(started.headers["location"])
                if 'data-status="released"' in page.text:
                    break
                await asyncio.sleep(0.25)
            assert "Vrijgegeven" in page.text and "hx-trigger" not in page.text  # polling stops
        for role in ("read-only", "municipality"):
            async with client(web_server, role) as (web, csrf):
                assert (await web.get("/console/helpdesk")).status_code == 403
                refused = await web.post(
                    "/console/helpdesk/stop", data={"csrf_token": csrf, "session_id": "1"}
                )
                assert refused.status_code == 403
        async with client(web_server, "operator") as (web, _csrf):
            whole = await web.get("/console/helpdesk", params={"q": "HDW1"})
            assert "04A1B2C3D4E5F6" in whole.text  # the operator sees whole card numbers


# ---- in the browser ---------------------------------------------------------------------------


async def test_the_helpdesk_stops_and_releases_a_session_at_a_station_that_ignores_the_first_stop(
    browser: Any, web_server: Stekker, short_flows: FlowTiming
) -> None:
    from playwright.async_api import expect

    await _card(web_server, "04FF00EE11DD99", "NL-STK-000777-1")
    station = FirstStopIgnored("HDB1", ocpp_url(web_server), unplug_delay=0.1)
    page = await login_page(browser, web_server, "helpdesk")
    try:
        async with running(station):
            assert await station.start_session(1, "04FF00EE11DD99") is not None
            await (
                page.get_by_role("navigation", name="Hoofdmenu").get_by_role("link", name="Helpdesk").click()
            )
            await page.get_by_label("Zoek een laadsessie").fill("7771")  # last digits of the card
            await page.get_by_role("button", name="Zoeken").click()
            row = page.locator("tr[data-session]")
            await expect(row).to_have_count(1)
            await expect(row).to_contain_text("HDB1")
            await expect(row).to_contain_text("Laadt nu")
            await screenshot(page, "console-helpdesk-search")
            await row.get_by_role("button", name=re.compile("^Stoppen en vrijgeven")).click()
            await page.get_by_role("button", name="Ja, stoppen en vrijgeven").click()  # the confirmation
            await page.wait_for_url("**/console/helpdesk/flows/*")
            await expect(page.locator("#flow-status")).to_have_text("Bezig…")
            await page.evaluate("window.__sameDocument = true")
            # the steps change on the page as the flow goes on: the stop is accepted and ignored
            await expect(page.locator("#step-remote_stop")).to_have_attribute("data-status", "ok")
            # the station's answer in words, its code kept for machines
            await expect(page.locator("#step-remote_stop")).to_contain_text("antwoordde geaccepteerd")
            await expect(page.locator("#step-remote_stop [data-answer]")).to_have_attribute(
                "data-answer", "Accepted"
            )
            await expect(page.locator("#step-wait_for_stop")).to_have_attribute("data-status", "running")
            await screenshot(page, "console-helpdesk-flow-running")
            await expect(page.locator("#step-wait_for_stop")).to_have_attribute(
                "data-status", "failed", timeout=15_000
            )
            await expect(page.locator("#flow")).to_have_attribute("data-status", "released", timeout=20_000)
            await expect(page.locator("#flow-status")).to_have_text("Vrijgegeven")
            await expect(page.locator("#step-unlock")).to_have_attribute("data-status", "ok")
            await expect(page.locator("#step-unlock")).to_contain_text("antwoordde ontgrendeld")
            await expect(page.locator("#step-check")).to_have_attribute("data-status", "ok")
            await expect(page.locator("#step-soft_reset")).to_have_attribute("data-status", "skipped")
            assert "kan de kabel eruit halen" in await page.locator("#flow-outcome").inner_text()
            assert await page.evaluate("window.__sameDocument") is True  # no reload: htmx polling
            await screenshot(page, "console-helpdesk-flow-released")
            assert station.active_transactions() == {}
            assert station.ignored == 1
    finally:
        await page.context.close()


async def _place(server: Stekker, station_id: str) -> None:
    async def job(db: AsyncSession) -> None:
        for name, lat, lon in (("Stationsplein", "52.09", "5.11"), ("Vredenburg", "52.093", "5.115")):
            place = Location(
                name=name, address="x", city="Utrecht", latitude=Decimal(lat), longitude=Decimal(lon)
            )
            db.add(place)
            await db.flush()
        await db.execute(
            update(ChargingStation).where(ChargingStation.id == station_id).values(location_id=place.id)
        )

    await server.ctx.write(job)


async def test_no_serious_accessibility_violations_on_the_operations_pages(
    browser: Any, web_server: Stekker
) -> None:
    from tests.web.conftest import PASSWORD

    station = SimulatedStation("AXE2", ocpp_url(web_server))
    async with running(station):
        await _place(web_server, "AXE2")
        await inventory.create_group(web_server.ctx, "test", "axe-group", None)
        await inventory.change_members(web_server.ctx, "test", "axe-group", ["AXE2"], add=True)
        context = await browser.new_context(base_url=base_url(web_server), bypass_csp=True)
        page = await context.new_page()
        try:
            await page.goto("/console/login")
            await page.get_by_label("Gebruikersnaam").fill("admin")
            await page.get_by_label("Wachtwoord").fill(PASSWORD)
            await page.get_by_role("button", name="Inloggen").click()
            await page.wait_for_url("**/console/")
            await page.goto("/console/stations/AXE2/functions?open=clear_cache")
            async with page.expect_navigation():
                await page.locator("form[action$='/clear_cache/confirm'] button").click()
            pages: dict[str, Any] = {"confirm": await axe_violations(page)}
            await screenshot(page, "console-station-confirm")
            await page.get_by_role("button", name=re.compile("^Ja, uitvoeren")).click()
            await page.locator("#answer-outcome").wait_for()
            assert await page.locator("#answer-outcome").inner_text() == "Geaccepteerd"
            pages["answer"] = await axe_violations(page)
            await screenshot(page, "console-station-answer")
            for path, name in (
                ("/console/stations?group=axe-group", "stations-map"),
                ("/console/stations", "stations"),
                ("/console/stations/AXE2", "station"),
                ("/console/stations/AXE2/configuration", "station-configuration"),
                ("/console/stations/AXE2/timeline?messages=true", "station-timeline"),
                ("/console/stations/AXE2/functions", "station-functions"),
                ("/console/helpdesk?q=AXE2", "helpdesk"),
                ("/console/helpdesk?q=%3Cb%3E", "helpdesk-bad-query"),
            ):
                await page.goto(path)
                pages[path] = await axe_violations(page)
                await screenshot(page, f"console-{name}")
            assert await page.evaluate("window.__pwned === undefined")
            problems = {
                path: [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in found]
                for path, found in pages.items()
                if found
            }
            assert problems == {}
            # the map works by keyboard: a location is a link
            await page.goto("/console/stations")
            link = page.locator("svg a").first
            await link.focus()
            await page.keyboard.press("Enter")
            await page.wait_for_url("**location_id=*")
        finally:
            await context.close()
