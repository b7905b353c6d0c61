"""The console and the public station page in real headless Chromium: what each role sees,
live updates from the event bus without a reload, the public EVSE page, an axe-core scan
of the main pages, and hostile input. Screenshots go to .cache/screenshots/."""

from __future__ import annotations

import asyncio
import re
from decimal import Decimal
from typing import Any

import pytest
from ocpp.v16 import call
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.app import Stekker
from stekker.db.models import ChargingStation, Evse, Location
from stekker.services.tariffs import seed_demo_tariff
from tests.peers import ocpp_station
from tests.web.conftest import axe_violations, base_url, login_page, screenshot

pytestmark = pytest.mark.asyncio(loop_scope="module")

XSS = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=1</script>'
ROLES = ("admin", "operator", "helpdesk", "municipality", "read-only")


def ocpp_url(server: Stekker) -> str:
    return f"ws://127.0.0.1:{server.ocpp_port}/ocpp"


async def _evse_uid(server: Stekker, station_id: str) -> str:
    async with server.ctx.db() as db:
        uid = (await db.execute(select(Evse.evse_id).where(Evse.station_id == station_id))).scalar_one()
    assert uid is not None
    return uid


async def _place(server: Stekker, station_id: str, name: str, opening: dict[str, Any] | None) -> None:
    async def job(db: AsyncSession) -> None:
        place = Location(
            name=name,
            address="Stationsplein 1",
            city="Utrecht",
            postal_code="3511 AA",
            latitude=Decimal("52.09"),
            longitude=Decimal("5.11"),
            opening_times=opening,
        )
        db.add(place)
        await db.flush()
        await db.execute(
            update(ChargingStation).where(ChargingStation.id == station_id).values(location_id=place.id)
        )

    await server.ctx.write(job)


async def test_each_role_sees_what_it_may(browser: Any, web_server: Stekker) -> None:
    for role in ROLES:
        page = await login_page(browser, web_server, role)
        try:
            await page.get_by_role("heading", name="Overzicht", level=1).wait_for()
            nav = page.get_by_role("navigation", name="Hoofdmenu")
            assert await nav.get_by_role("link", name="Laadpalen").count() == 1
            users_link = nav.get_by_role("link", name="Gebruikers")
            assert await users_link.count() == (1 if role == "admin" else 0)
            await page.goto("/console/users")
            heading = await page.get_by_role("heading", level=1).inner_text()
            if role == "admin":
                assert heading == "Gebruikers"
                assert await page.get_by_role("cell", name="municipality", exact=True).count() == 1
                await screenshot(page, "console-users")
            else:
                assert heading == "Geen toegang"
            await page.goto("/console/stations")
            assert await page.get_by_role("heading", level=1).inner_text() == "Laadpalen"
            if role == "helpdesk":
                await screenshot(page, "console-denied-helpdesk")
            await page.get_by_role("button", name="Uitloggen").click()
            await page.wait_for_url("**/console/login?bye=1")
            assert await page.get_by_text("U bent uitgelogd.").count() == 1
            await page.goto("/console/")
            assert "/console/login" in page.url  # logged out means out
        finally:
            await page.context.close()


async def test_a_station_going_offline_shows_on_the_dashboard_without_a_reload(
    browser: Any, web_server: Stekker
) -> None:
    from playwright.async_api import expect

    page = await login_page(browser, web_server, "operator")
    try:
        async with ocpp_station(ocpp_url(web_server), "LIVE1") as cp:
            await cp.call(call.StatusNotification(connector_id=1, error_code="NoError", status="Available"))
            await page.reload()
            await page.wait_for_selector("body[data-live-state=open]")
            online = int(await page.locator("#count-online").inner_text())
            offline = int(await page.locator("#count-offline").inner_text())
            assert online >= 1
            await page.evaluate("window.__sameDocument = true")  # gone if the page reloads
        # the station disconnected: the bus → SSE → htmx refreshes the tiles
        await expect(page.locator("#count-offline")).to_have_text(str(offline + 1), timeout=15_000)
        assert await page.locator("#count-online").inner_text() == str(online - 1)
        assert await page.evaluate("window.__sameDocument") is True
        await screenshot(page, "console-dashboard")
    finally:
        await page.context.close()


async def test_the_public_evse_page_shows_status_price_hours_and_no_personal_data(
    browser: Any, web_server: Stekker
) -> None:
    async with ocpp_station(ocpp_url(web_server), "PUBLIC1") as cp:
        await cp.call(call.StatusNotification(connector_id=1, error_code="NoError", status="Available"))
        uid = await _evse_uid(web_server, "PUBLIC1")
        await seed_demo_tariff(web_server.ctx)
        await _place(
            web_server,
            "PUBLIC1",
            "Parkeergarage Centrum",
            {
                "twentyfourseven": False,
                "regular_hours": [
                    {"weekday": d, "period_begin": "07:00", "period_end": "23:00"} for d in range(1, 8)
                ],
            },
        )
        context = await browser.new_context(base_url=base_url(web_server))
        page = await context.new_page()
        try:
            await page.goto(f"/p/{uid}")
            assert await page.get_by_role("heading", level=1).inner_text() == f"Laadpunt {uid}"
            assert await page.locator("#evse-status-text").inner_text() == "Beschikbaar"
            price = await page.locator("#price-text").inner_text()
            assert "per kWh" in price and "€\u00a0" in price and "inclusief btw" in price
            table = page.get_by_role("table", name="Prijzen in cijfers")
            assert re.search(r"€\s\d+,\d{2}", await table.inner_text())
            assert await page.get_by_text("maandag").count() == 1
            assert await page.get_by_text("07:00\u201323:00").count() == 7
            assert await page.get_by_text("Parkeergarage Centrum").count() == 1
            assert await page.get_by_role("navigation", name="Hoofdmenu").count() == 0
            assert await page.locator("a[href^='/console']").count() == 0  # nothing of the console
            await screenshot(page, "public-evse-nl")
            await page.get_by_role("link", name="English").click()
            await page.wait_for_url("**lang=en")
            assert await page.locator("#evse-status-text").inner_text() == "Available"
            assert "Prices include VAT." in await page.locator("#price-text").inner_text()
            await screenshot(page, "public-evse-en")
            missing = await page.goto("/p/NL*STK*NOPE*1")
            assert missing is not None and missing.status == 404
            assert await page.get_by_text("There is no such charge point").count() == 1
        finally:
            await context.close()


async def test_no_serious_accessibility_violations_on_the_main_pages(
    browser: Any, web_server: Stekker
) -> None:
    async with ocpp_station(ocpp_url(web_server), "AXE1") as cp:
        await cp.call(call.StatusNotification(connector_id=1, error_code="NoError", status="Charging"))
        uid = await _evse_uid(web_server, "AXE1")
        pages = ["/console/", "/console/stations", "/console/stations/AXE1", "/console/users", f"/p/{uid}"]
        context = await browser.new_context(base_url=base_url(web_server), bypass_csp=True)
        page = await context.new_page()
        try:
            await page.goto("/console/login")
            found = {"/console/login": await axe_violations(page)}
            await page.get_by_label("Gebruikersnaam").fill("admin")
            await page.get_by_label("Wachtwoord").fill("wrong")
            await page.get_by_role("button", name="Inloggen").click()
            await page.get_by_role("alert").wait_for()
            found["/console/login (error)"] = await axe_violations(page)
            await screenshot(page, "console-login-error")
            await page.get_by_label("Gebruikersnaam").fill("admin")
            from tests.web.conftest import PASSWORD

            await page.get_by_label("Wachtwoord").fill(PASSWORD)
            await page.get_by_role("button", name="Inloggen").click()
            await page.wait_for_url("**/console/")
            for path in pages:
                await page.goto(path)
                found[path] = await axe_violations(page)
                name = path.strip("/").replace("/", "-").replace("*", "_") or "root"
                await screenshot(page, f"page-{name}")
            problems = {
                path: [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in violations]
                for path, violations in found.items()
                if violations
            }
            assert problems == {}
        finally:
            await context.close()


async def test_keyboard_users_can_skip_to_the_content(browser: Any, web_server: Stekker) -> None:
    page = await login_page(browser, web_server, "read-only")
    try:
        await page.goto("/console/stations")
        await page.keyboard.press("Tab")
        focused = await page.evaluate("document.activeElement.textContent")
        assert focused == "Naar de inhoud"
        await page.keyboard.press("Enter")
        assert await page.evaluate("location.hash") == "#main"
        await page.keyboard.press("Tab")
        assert await page.evaluate("document.activeElement.id") == "f-q"  # the first field of main
        style = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert style == "solid"  # focus is visible
    finally:
        await page.context.close()


async def test_hostile_station_data_and_search_are_shown_as_text(browser: Any, web_server: Stekker) -> None:
    async with ocpp_station(ocpp_url(web_server), "HOSTILE1"):
        pass
    await _place(web_server, "HOSTILE1", XSS, None)
    page = await login_page(browser, web_server, "helpdesk")
    dialogs: list[str] = []
    page.on("dialog", lambda d: dialogs.append(d.message))
    try:
        await page.goto("/console/stations")
        await page.get_by_label("Zoeken").fill(XSS)
        await page.get_by_role("button", name="Toepassen").click()
        await page.wait_for_load_state()
        assert await page.get_by_label("Zoeken").input_value() == XSS
        await page.goto("/console/stations?q=HOSTILE")
        assert await page.get_by_role("cell", name=re.compile(re.escape("<img src=x"))).count() == 1
        await page.goto("/console/stations/HOSTILE1")
        await asyncio.sleep(0.2)
        assert await page.evaluate("window.__pwned === undefined")
        assert dialogs == []
        await screenshot(page, "console-station-hostile")
        # a form posted from elsewhere, without the token: refused
        response = await page.request.post(f"{base_url(web_server)}/console/logout")
        assert response.status == 403
        await page.goto("/console/")
        assert "/console/login" not in page.url
    finally:
        await page.context.close()
