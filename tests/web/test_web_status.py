"""The derived station status in the console, in real Chromium with real OCPP 1.6 and 2.0.1
stations: the badge's words and its colour kind on the list and the station page (charging
is blue "Aan het laden", never "Beschikbaar"; faulted red; offline grey)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from ocpp.v16 import call

from stekker.app import Stekker
from tests.peers import now_iso, ocpp_station, raw_station
from tests.peers201 import tx_event
from tests.web.conftest import login_page, screenshot

pytestmark = pytest.mark.asyncio(loop_scope="module")

WIDTHS = (1280, 390)


def ocpp_url(server: Stekker) -> str:
    return f"ws://127.0.0.1:{server.ocpp_port}/ocpp"


async def _badge_shows(page: Any, selector: str, text: str, kind: str) -> None:
    from playwright.async_api import expect

    badge = page.locator(selector)
    await expect(badge).to_have_text(text, timeout=15_000)
    await expect(badge).to_have_class(re.compile(rf"\bbadge\b.*\b{kind}\b"))


def _row_badge(station_id: str) -> str:
    return f'tr[data-station="{station_id}"] [data-badge="station"] >> nth=0'


async def test_a_charging_16_station_shows_charging_then_faulted_then_offline(
    browser: Any, web_server: Stekker
) -> None:
    page = await login_page(browser, web_server, "operator")
    try:
        async with ocpp_station(ocpp_url(web_server), "WS16") as cp:
            for connector in (0, 1, 2):
                await cp.call(
                    call.StatusNotification(connector_id=connector, error_code="NoError", status="Available")
                )
            await cp.call(call.StatusNotification(connector_id=1, error_code="NoError", status="Charging"))
            await page.goto("/console/stations?q=WS16")
            await _badge_shows(page, _row_badge("WS16"), "Aan het laden", "busy")
            evse_two = page.locator('tr[data-station="WS16"] [data-evse="2"] [data-badge="station"]')
            await _badge_shows(
                page,
                'tr[data-station="WS16"] [data-evse="1"] [data-badge="station"]',
                "Aan het laden",
                "busy",
            )
            await _badge_shows(
                page, 'tr[data-station="WS16"] [data-evse="2"] [data-badge="station"]', "Beschikbaar", "ok"
            )
            assert await evse_two.count() == 1
            await page.goto("/console/stations/WS16")
            await _badge_shows(page, "#station-status", "Aan het laden", "busy")
            for width in WIDTHS:
                await page.set_viewport_size({"width": width, "height": 900})
                await screenshot(page, f"status-station-charging-nl-{width}")
            await page.goto("/console/stations/WS16?lang=en")
            await _badge_shows(page, "#station-status", "Charging", "busy")
            for width in WIDTHS:
                await page.set_viewport_size({"width": width, "height": 900})
                await screenshot(page, f"status-station-charging-en-{width}")
            await page.goto("/console/stations?q=WS16&lang=nl")
            await page.set_viewport_size({"width": 1280, "height": 900})

            # the list follows live: a fault on EVSE 2 turns the row red without a reload
            await page.wait_for_selector("body[data-live-state=open]")
            await cp.call(
                call.StatusNotification(connector_id=2, error_code="GroundFailure", status="Faulted")
            )
            await _badge_shows(page, _row_badge("WS16"), "Storing", "bad")
            for width in WIDTHS:
                await page.set_viewport_size({"width": width, "height": 900})
                await screenshot(page, f"status-list-faulted-nl-{width}")
        await _badge_shows(page, _row_badge("WS16"), "Offline", "off")
        await page.goto("/console/stations/WS16?lang=en")
        await _badge_shows(page, "#station-status", "Offline", "off")
        for width in WIDTHS:
            await page.set_viewport_size({"width": width, "height": 900})
            await screenshot(page, f"status-list-offline-en-{width}")
    finally:
        await page.context.close()


async def test_a_charging_201_station_shows_charging(browser: Any, web_server: Stekker) -> None:
    page = await login_page(browser, web_server, "helpdesk", viewport={"width": 390, "height": 844})
    try:
        async with raw_station(ocpp_url(web_server), "WS201", protocol="ocpp2.0.1") as station:
            await station.ok(
                "BootNotification",
                {"chargingStation": {"model": "T2", "vendorName": "Test"}, "reason": "PowerUp"},
            )
            status = {"timestamp": now_iso(), "connectorStatus": "Occupied", "evseId": 1, "connectorId": 1}
            await station.ok("StatusNotification", status)
            await page.goto("/console/stations/WS201")
            await _badge_shows(page, "#station-status", "Bezet", "busy")
            await station.ok(
                "TransactionEvent",
                tx_event(
                    "Started", "w201", 0, meter_wh=100, chargingState="Charging", trigger="CablePluggedIn"
                ),
            )
            await page.reload()
            await _badge_shows(page, "#station-status", "Aan het laden", "busy")
            # the connector shows what the station sent, in words
            await _badge_shows(page, 'tr[data-evse="1"] [data-badge="connector"]', "Bezet", "busy")
            await screenshot(page, "status-station-201-charging-nl-390")
            await page.goto("/console/stations?q=WS201&lang=en")
            await _badge_shows(page, _row_badge("WS201"), "Charging", "busy")
            await screenshot(page, "status-list-201-charging-en-390")
    finally:
        await page.context.close()


async def test_hostile_station_ids_in_the_console_get_a_page_not_a_crash(
    browser: Any, web_server: Stekker
) -> None:
    page = await login_page(browser, web_server, "read-only")
    try:
        for path in (
            "/console/stations/NOPE",
            "/console/stations/%3Cscript%3E",
            "/console/stations/" + "A" * 60,
        ):
            answer = await page.goto(path)
            assert answer is not None and answer.status in (400, 404, 422), path
            assert await page.locator("[data-badge]").count() == 0
        answer = await page.goto("/console/stations?status=charging")
        assert answer is not None and answer.status == 400
    finally:
        await page.context.close()
