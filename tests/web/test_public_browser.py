"""The public EVSE page and the problem report in real headless Chromium, on a phone (390 px)
and a desktop (1280 px), in Dutch and English: the page fits its width, no amount of money
wraps over two lines, plugs read "Type 2 · tot 22 kW", and a driver's report reaches the
helpdesk's list on the console. Screenshots go to .cache/screenshots/."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from ocpp.v16 import call
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.app import Stekker
from stekker.db.models import ChargingStation, Evse, Location
from stekker.services.tariffs import DEMO_TARIFF
from tests.peers import ocpp_station
from tests.test_cdrs import add_tariff
from tests.web.conftest import base_url, login_page, screenshot

pytestmark = pytest.mark.asyncio(loop_scope="module")

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
XSS = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=1</script>'

#: every amount of money in the page's text nodes must lie on one line: a Range over each
#: match has one client rect (two when it wraps)
AMOUNTS_ON_ONE_LINE_JS = r"""() => {
  const pattern = /(€|£|\$|[A-Z]{3})[\s\u00a0]?-?\d[\d.,]*/g;
  const broken = [];
  let count = 0;
  const walker = document.createTreeWalker(document.querySelector('main'), NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    for (const match of node.textContent.matchAll(pattern)) {
      const range = document.createRange();
      range.setStart(node, match.index);
      range.setEnd(node, match.index + match[0].length);
      const lines = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
      count += 1;
      if (lines.size > 1) broken.push(match[0]);
    }
  }
  return {count, broken};
}"""


async def _public_evse(server: Stekker) -> str:
    async with ocpp_station(f"ws://127.0.0.1:{server.ocpp_port}/ocpp", "PUBLICB") as cp:
        await cp.call(call.StatusNotification(connector_id=1, error_code="NoError", status="Available"))
    await add_tariff(
        server, DEMO_TARIFF, effective_from=datetime.now(UTC) - timedelta(days=1), grace_minutes=15
    )

    async def job(db: AsyncSession) -> None:
        place = Location(
            name="Parkeergarage Centrum (ingang Oudegracht, naast de fietsenstalling)",
            address="Oudegracht 1",
            city="Utrecht",
            postal_code="3511 AA",
            latitude=Decimal("52.09"),
            longitude=Decimal("5.12"),
            opening_times={
                "twentyfourseven": False,
                "regular_hours": [
                    {"weekday": d, "period_begin": "07:00", "period_end": "23:00"} for d in range(1, 8)
                ],
            },
        )
        db.add(place)
        await db.flush()
        await db.execute(
            update(ChargingStation).where(ChargingStation.id == "PUBLICB").values(location_id=place.id)
        )

    await server.ctx.write(job)
    async with server.ctx.db() as db:
        uid = (await db.execute(select(Evse.evse_id).where(Evse.station_id == "PUBLICB"))).scalar_one()
    assert uid is not None
    return uid


async def _fits(page: Any) -> None:
    width = await page.evaluate("document.documentElement.scrollWidth")
    inner = await page.evaluate("window.innerWidth")
    assert width <= inner, f"the page is {width} px wide in a {inner} px window"


async def test_the_public_page_fits_a_phone_and_no_amount_wraps(browser: Any, web_server: Stekker) -> None:
    uid = await _public_evse(web_server)
    for viewport, size in ((PHONE, "390"), (DESKTOP, "1280")):
        context = await browser.new_context(base_url=base_url(web_server), viewport=viewport)
        page = await context.new_page()
        try:
            for lang, plug, price, hours in (
                ("nl", "Type 2 tot 22 kW", "Laden kost €\u00a00,4235 per kWh", "07:00\u201323:00"),
                ("en", "Type 2 up to 22 kW", "Charging costs €0.4235 per kWh", "07:00\u201323:00"),
            ):
                await page.goto(f"/p/{uid}?lang={lang}")
                await _fits(page)
                amounts = await page.evaluate(AMOUNTS_ON_ONE_LINE_JS)
                assert amounts["count"] >= 4 and amounts["broken"] == [], amounts
                plugs = " ".join((await page.locator("#evse-status .plug").inner_text()).split())
                assert plug in plugs and "IEC_62196" not in await page.content()
                assert price in await page.locator("#price-text").inner_text()
                assert await page.get_by_text(hours).count() == 7
                link = page.get_by_role(
                    "link", name="Een probleem melden" if lang == "nl" else "Report a problem"
                )
                assert await link.count() == 1
                await screenshot(page, f"public-evse-{size}-{lang}")
        finally:
            await context.close()


async def test_a_driver_reports_a_problem_on_a_phone_and_the_helpdesk_sees_it(
    browser: Any, web_server: Stekker
) -> None:
    async with web_server.ctx.db() as db:
        uid = (
            await db.execute(select(Evse.evse_id).where(Evse.station_id == "PUBLICB"))
        ).scalar_one_or_none()
    if uid is None:
        uid = await _public_evse(web_server)
    context = await browser.new_context(base_url=base_url(web_server), viewport=PHONE)
    page = await context.new_page()
    try:
        await page.goto(f"/p/{uid}?lang=en")
        await page.get_by_role("link", name="Report a problem").click()
        await page.wait_for_url("**/report")
        await _fits(page)
        await screenshot(page, "public-report-390-en")
        await page.goto(f"/p/{uid}/report?lang=nl")
        await _fits(page)
        await screenshot(page, "public-report-390-nl")
        await page.get_by_label("Laadplek bezet door een niet-ladende auto").check()
        await page.get_by_label("Uw toelichting").fill(f"Een bestelbus staat al de hele dag hier. {XSS}")
        await page.get_by_role("button", name="Melding versturen").click()
        await page.wait_for_url(re.compile(r".*reported=1.*"))
        assert "De helpdesk heeft uw melding ontvangen" in await page.locator("#reported").inner_text()
        await screenshot(page, "public-reported-390-nl")
        # a text over the limit is refused with the reason, the words kept
        await page.goto(f"/p/{uid}/report?lang=en")
        await page.get_by_label("Something else").check()
        await page.get_by_label("In your own words").evaluate("el => el.removeAttribute('maxlength')")
        await page.get_by_label("In your own words").fill("x" * 1001)
        await page.get_by_role("button", name="Send report").click()
        assert "at most 1000 characters" in await page.locator("#report-error").inner_text()
        await screenshot(page, "public-report-refused-390-en")
    finally:
        await context.close()

    for viewport, size in ((PHONE, "390"), (DESKTOP, "1280")):
        helpdesk = await login_page(browser, web_server, "helpdesk", viewport=viewport)
        try:
            await helpdesk.goto("/console/helpdesk")
            report = helpdesk.locator(".problem-report", has_text=uid)
            await report.first.wait_for()
            text = await report.first.inner_text()
            assert "Laadplek bezet door een niet-ladende auto" in text and "Een bestelbus" in text
            assert "<script>" in text  # the driver's words as text, never as markup
            assert await helpdesk.evaluate("window.__pwned") is None
            await _fits(helpdesk)
            await screenshot(helpdesk, f"console-helpdesk-reports-{size}-nl")
            await helpdesk.goto("/console/helpdesk/problems?lang=en")
            await _fits(helpdesk)
            await screenshot(helpdesk, f"console-problem-reports-{size}-en")
            if size == "1280":
                await helpdesk.get_by_role("button", name=re.compile("^Handled")).first.click()
                await helpdesk.wait_for_url(re.compile(r".*done=\d+"))
                assert await helpdesk.locator(".problem-report", has_text=uid).count() == 0
        finally:
            await helpdesk.context.close()


async def test_the_tariff_pages_show_prices_as_billed(browser: Any, web_server: Stekker) -> None:
    """The console's tariff version: unit prices exact (€ 0,4235), amounts in cents; Dutch and
    English each in their own form."""
    async with web_server.ctx.db() as db:
        present = (
            await db.execute(select(Evse.evse_id).where(Evse.station_id == "PUBLICB"))
        ).scalar_one_or_none()
    if present is None:
        await _public_evse(web_server)
    for viewport, size in ((PHONE, "390"), (DESKTOP, "1280")):
        page = await login_page(browser, web_server, "municipality", viewport=viewport)
        try:
            for lang, unit, excl in (("nl", "€\u00a00,4235", "€\u00a00,35"), ("en", "€0.4235", "€0.35")):
                await page.goto(f"/console/tariffs/STD/versions/1?lang={lang}")
                prices = await page.locator("#version-prices").inner_text()
                assert unit in prices and excl in prices, prices
                amounts = await page.evaluate(AMOUNTS_ON_ONE_LINE_JS)
                assert amounts["broken"] == [], amounts
                await screenshot(page, f"console-tariff-version-{size}-{lang}")
        finally:
            await page.context.close()
