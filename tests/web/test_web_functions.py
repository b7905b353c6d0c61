"""A station's remote functions in real headless Chromium, with simulated stations (the `ocpp`
package) answering over loopback: grouped by what an operator wants to do, only what the
station's OCPP version has, one function open at a time; a reset and an unlock through the page
with the station's answer in words; what drivers notice named before anything is sent; hostile
values in the form fields answered 422 with a message; stopping a session from its page and
the helpdesk's stop and release, each after a confirmation that cancel leaves undone.
Screenshots at 1280 and 390 px, Dutch and English, in .cache/screenshots/."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from stekker.app import Stekker
from stekker.db.models import ChargingSession, SessionStatus
from stekker.services import tokens
from stekker.sim import SimulatedStation, SimulatedStation201
from stekker.sim.link import StationLink
from tests.observe import eventually
from tests.web.conftest import axe_violations, login_page, screenshot

pytestmark = pytest.mark.asyncio(loop_scope="module")

XSS = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=1</script>'
GROUPS = ["restart", "sessions", "availability", "configuration", "diagnostics", "advanced"]
WIDTHS = (1280, 390)
# A page of six groups of closed functions; the old page of open forms was ~5,000 px.
MAX_HEIGHT = 2400


@contextlib.asynccontextmanager
async def running(station: StationLink) -> AsyncIterator[Any]:
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


async def card(server: Stekker, uid: str) -> None:
    await tokens.upsert_token(server.ctx, "test", tokens.TokenInput(uid))


async def running_session(server: Stekker, station_id: str) -> ChargingSession | None:
    async with server.ctx.db() as db:
        return (
            await db.execute(
                select(ChargingSession).where(
                    ChargingSession.station_id == station_id, ChargingSession.status == SessionStatus.ACTIVE
                )
            )
        ).scalar_one_or_none()


async def session_status(server: Stekker, session_id: int) -> str:
    async with server.ctx.db() as db:
        found = await db.get(ChargingSession, session_id)
        assert found is not None
        return str(found.status)


async def shown_functions(page: Any) -> list[str]:
    names: list[str] = await page.locator("details.fx").evaluate_all(
        "nodes => nodes.map(n => n.dataset.function)"
    )
    return names


async def check_the_page(page: Any, station_id: str, shot: str) -> None:
    """Six groups in order; each group's functions open one at a time; a reasonable height; no
    horizontal scrolling of the functions; screenshots in both languages at both widths."""
    for lang in ("nl", "en"):
        for width in WIDTHS:
            await page.set_viewport_size({"width": width, "height": 900})
            await page.goto(f"/console/stations/{station_id}/functions?lang={lang}")
            groups = await page.locator("section.fx-group").evaluate_all("s => s.map(n => n.dataset.group)")
            assert groups == GROUPS
            height = await page.evaluate("document.documentElement.scrollHeight")
            assert height < MAX_HEIGHT * (2 if width < 600 else 1), (lang, width, height)
            box = await page.locator(".fx-groups").bounding_box()
            assert box is not None and box["x"] + box["width"] <= width, (lang, width, box)
            await screenshot(page, f"{shot}-{lang}-{width}")
    await page.set_viewport_size({"width": 1280, "height": 900})
    await page.goto(f"/console/stations/{station_id}/functions?lang=nl")
    opened: list[str] = []
    for group in GROUPS:
        section = page.locator(f"section[data-group='{group}']")
        details = section.locator("details.fx")
        for n in range(await details.count()):
            one = details.nth(n)
            await one.locator("summary").click()
            assert await one.get_attribute("open") is not None
            assert await one.locator(".fx-body").is_visible()
            assert await page.locator("details.fx[open]").count() == 1  # the one opened before closed
            opened.append(await one.get_attribute("data-function") or "")
    assert opened == await shown_functions(page)
    for lang in ("en", "nl"):  # Dutch last: the language is remembered for what follows
        for width in WIDTHS:
            await page.set_viewport_size({"width": width, "height": 900})
            await page.goto(f"/console/stations/{station_id}/functions?open=change_availability&lang={lang}")
            await screenshot(page, f"{shot}-open-{lang}-{width}")
    assert await page.locator("details.fx[open]").count() == 1
    assert await axe_violations(page) == []
    await page.set_viewport_size({"width": 1280, "height": 900})


async def test_a_16_station_shows_its_functions_by_group(browser: Any, web_server: Stekker) -> None:
    station = SimulatedStation("FN16", ocpp_url(web_server))
    page = await login_page(browser, web_server, "admin", bypass_csp=True)
    try:
        async with running(station):
            await page.goto("/console/stations/FN16/functions")
            assert await page.locator("#fx-version").get_attribute("data-version") == "1.6"
            names = await shown_functions(page)
            assert {"get_configuration", "change_configuration", "reset", "unlock_connector", "raw"} <= set(
                names
            )
            assert not {"get_variables", "set_variables", "get_charging_profiles"} & set(names)
            # 1.6 resets the station as a whole and has no TransactionEvent to trigger
            assert await page.locator("#reset-evse_number").count() == 0
            messages = await page.locator("#trigger_message-message option").evaluate_all(
                "o => o.map(n => n.value)"
            )
            assert "TransactionEvent" not in messages and "Heartbeat" in messages
            # human labels, no snake_case or JSON for the common cases
            text = await page.locator("main").inner_text()
            assert "evse_number" not in text and "Herstarten en ontgrendelen" in text
            assert await page.locator("section.fx-group:not([data-group='advanced']) textarea").count() == 0
            await check_the_page(page, "FN16", "console-functions-16")
    finally:
        await page.context.close()


async def test_a_201_station_shows_its_functions_and_says_a_reset_waits_for_the_driver(
    browser: Any, web_server: Stekker
) -> None:
    await card(web_server, "CARD-F201")
    station = SimulatedStation201("FN201", ocpp_url(web_server), unplug_delay=0.1, reboot_delay=0.2)
    page = await login_page(browser, web_server, "operator", bypass_csp=True)
    try:
        async with running(station):
            await page.goto("/console/stations/FN201/functions")
            assert await page.locator("#fx-version").get_attribute("data-version") == "2.x"
            names = await shown_functions(page)
            assert {"get_variables", "set_variables", "get_charging_profiles", "reset"} <= set(names)
            assert not {"get_configuration", "change_configuration", "raw"} & set(names)  # raw: admin only
            assert await page.locator("#reset-evse_number").count() == 1
            messages = await page.locator("#trigger_message-message option").evaluate_all(
                "o => o.map(n => n.value)"
            )
            assert "TransactionEvent" in messages
            await check_the_page(page, "FN201", "console-functions-201")
            # a soft reset while a driver charges: the confirmation says the session goes on,
            # the station schedules it, and the page says so in words
            assert await station.start_session(1, "CARD-F201") is not None
            session = await eventually(lambda: running_session(web_server, "FN201"))
            await page.goto("/console/stations/FN201/functions?open=reset")
            await page.locator("#reset-type").select_option("Soft")
            await page.locator("#fn-reset button[type=submit]").click()
            await page.wait_for_url("**/functions/reset/confirm*")
            drivers = page.locator("#fx-drivers")
            assert await drivers.get_attribute("data-impact") == "waits_for_sessions"
            assert await drivers.locator(f"li[data-session='{session.id}']").count() == 1
            await page.get_by_role("button", name=re.compile("^Ja, uitvoeren")).click()
            await page.locator("#answer-words").wait_for()
            assert (
                await page.locator("#answer-words").inner_text()
                == "De laadpaal herstart zodra niemand meer laadt."
            )
            assert await session_status(web_server, session.id) == "active"
            await screenshot(page, "console-functions-201-reset-scheduled")
    finally:
        await page.context.close()


async def test_unlock_and_reset_through_the_page_with_the_station_answering(
    browser: Any, web_server: Stekker
) -> None:
    await card(web_server, "CARD-FUN1")
    station = SimulatedStation("FNU1", ocpp_url(web_server), unplug_delay=0.1, reboot_delay=0.2)
    page = await login_page(browser, web_server, "helpdesk")
    try:
        async with running(station):
            assert await station.start_session(1, "CARD-FUN1") is not None
            session = await eventually(lambda: running_session(web_server, "FNU1"))
            await page.goto("/console/stations/FNU1/functions")
            unlock = page.locator("#fn-unlock_connector")
            await unlock.locator("summary").click()
            await unlock.locator("#unlock_connector-evse_number").select_option("1")
            await unlock.get_by_role("button", name=re.compile("^Verder")).click()
            await page.wait_for_url("**/functions/unlock_connector/confirm*")
            # what the driver notices, before anything is sent: this session ends; the helpdesk
            # hears the card's last four characters
            drivers = page.locator("#fx-drivers")
            assert await drivers.get_attribute("data-impact") == "ends_now"
            row = drivers.locator(f"li[data-session='{session.id}']")
            assert "laadpas ****FUN1" in await row.inner_text()
            await screenshot(page, "console-functions-confirm-unlock-nl-1280")
            await page.set_viewport_size({"width": 390, "height": 800})
            await screenshot(page, "console-functions-confirm-unlock-nl-390")
            await page.set_viewport_size({"width": 1280, "height": 900})
            assert station.active_transactions() != {}  # nothing sent yet
            await page.get_by_role("button", name=re.compile("^Ja, uitvoeren")).click()
            await page.locator("#answer-words").wait_for()
            assert await page.locator("#answer-outcome").inner_text() == "Geaccepteerd"
            assert (
                await page.locator("#answer-words").inner_text() == "De laadpaal heeft de kabel ontgrendeld."
            )
            await screenshot(page, "console-functions-answer-unlock-nl-1280")
            await eventually(lambda: station.active_transactions() == {})
            # a hard reset, now that nobody charges: nobody notices, and the station restarts
            await page.goto("/console/stations/FNU1/functions?open=reset&lang=en")
            await page.locator("#reset-type").select_option("Hard")
            await page.locator("#fn-reset").get_by_role("button", name=re.compile("^Next")).click()
            await page.wait_for_url("**/functions/reset/confirm*")
            assert "No session is running here now" in await page.locator("#fx-drivers").inner_text()
            await screenshot(page, "console-functions-confirm-reset-en-1280")
            await page.get_by_role("button", name=re.compile("^Yes, do it")).click()
            await page.locator("#answer-words").wait_for()
            assert (
                await page.locator("#answer-words").inner_text()
                == "The station accepted the reset and restarts now."
            )
            await page.set_viewport_size({"width": 390, "height": 800})
            await screenshot(page, "console-functions-answer-reset-en-390")
    finally:
        await page.context.close()
    # offline now: the page says nothing was sent, in words
    page = await login_page(browser, web_server, "helpdesk")
    try:
        await page.goto("/console/stations/FNU1/functions?open=unlock_connector")
        await page.locator("#fn-unlock_connector").get_by_role("button", name=re.compile("^Verder")).click()
        await page.get_by_role("button", name=re.compile("^Ja, uitvoeren")).click()
        await page.locator("#answer-words").wait_for()
        assert await page.locator("#answer-outcome").inner_text() == "Laadpaal offline"
        assert (
            await page.locator("#answer-words").inner_text()
            == "De laadpaal is offline: het ontgrendelen is niet verstuurd."
        )
    finally:
        await page.context.close()


async def test_hostile_values_in_the_form_fields_are_a_message_not_a_crash(
    browser: Any, web_server: Stekker
) -> None:
    station = SimulatedStation("FNX1", ocpp_url(web_server))
    page = await login_page(browser, web_server, "admin", bypass_csp=True)
    responses: list[int] = []
    page.on("response", lambda r: responses.append(r.status) if "/functions/" in r.url else None)
    try:
        async with running(station):
            cases = [
                ("remote_start", {"token_uid": XSS}, "Laadpas: te lang (hoogstens 36 tekens)."),
                ("remote_start", {"token_uid": "04\u0007AB"}, "Laadpas: gebruik alleen gewone tekens."),
                ("unlock_connector", {"evse_number": "1; DROP TABLE"}, "Laadpunt: vul een heel getal in."),
                ("reset", {"type": XSS}, "Hoe: kies een van de mogelijkheden."),
                (
                    "change_availability",
                    {"evse_number": "99"},
                    "Laadpunt: deze laadpaal heeft laadpunt 1, 2.",
                ),
                (
                    "reserve_now",
                    {"token_uid": "A", "expires_at": "gisteren"},
                    "Tot: vul een datum en tijd in.",
                ),
                (
                    "raw",
                    {"action": "Heartbeat", "payload": "[1, 2"},
                    "Inhoud (JSON): dit is geen geldige JSON.",
                ),
                ("raw", {"action": "Heartbeat", "payload": "[1, 2]"}, "Inhoud (JSON): geef een JSON-object"),
                ("raw", {"action": XSS[:60], "payload": "{}"}, "Deze gegevens passen niet bij de functie."),
                ("clear_charging_profile", {"profile_id": "-5"}, "Profielnummer: kies een getal van 1"),
                (
                    "get_configuration",
                    {"keys": "Heartbeat\x00Interval"},
                    "Sleutels: gebruik alleen gewone tekens.",
                ),
            ]
            for name, values, message in cases:
                await page.goto(f"/console/stations/FNX1/functions?open={name}")
                form = page.locator(f"#fn-{name} form")
                # past the browser's own checks, as a hostile client would be
                await form.evaluate(
                    """(form, values) => {
                        form.noValidate = true;
                        for (const [name, value] of Object.entries(values)) {
                            const field = form.elements[name];
                            if (field.tagName === "SELECT") {
                                const option = document.createElement("option");
                                option.value = value; option.textContent = "x";
                                field.appendChild(option);
                            }
                            field.removeAttribute("maxlength");
                            if (["number", "datetime-local"].includes(field.type)) {
                                field.setAttribute("type", "text");
                            }
                            field.value = value;
                        }
                    }""",
                    values,
                )
                responses.clear()
                await form.locator("button[type=submit]").click()
                problem = page.locator("#fx-problem")
                await problem.wait_for()
                assert message in await problem.inner_text(), (name, await problem.inner_text())
                assert responses and responses[-1] == 422, (name, responses)
                # the same function is open again, with what was typed
                assert await page.locator(f"#fn-{name}").get_attribute("open") is not None
                assert await page.evaluate("window.__pwned === undefined")
            await screenshot(page, "console-functions-hostile-nl-1280")
            assert await axe_violations(page) == []
            assert station.active_transactions() == {}
    finally:
        await page.context.close()


async def test_stop_from_the_session_page_after_a_confirmation(browser: Any, web_server: Stekker) -> None:
    await card(web_server, "CARD-STOP1")
    station = SimulatedStation("FNS1", ocpp_url(web_server), unplug_delay=0.1)
    async with running(station):
        assert await station.start_session(2, "CARD-STOP1") is not None
        session = await eventually(lambda: running_session(web_server, "FNS1"))
        # who may not stop sees no button
        reader = await login_page(browser, web_server, "read-only")
        try:
            await reader.goto(f"/console/sessions/{session.id}")
            await reader.locator("#session-live").wait_for()
            assert await reader.locator("#stop-session").count() == 0
        finally:
            await reader.context.close()
        page = await login_page(browser, web_server, "operator", bypass_csp=True)
        try:
            for lang in ("nl", "en"):
                for width in WIDTHS:
                    await page.set_viewport_size({"width": width, "height": 900})
                    await page.goto(f"/console/sessions/{session.id}?lang={lang}")
                    await screenshot(page, f"console-session-stop-button-{lang}-{width}")
            await page.set_viewport_size({"width": 1280, "height": 900})
            await page.goto(f"/console/sessions/{session.id}?lang=nl")
            await page.get_by_role("button", name="Laadsessie stoppen").click()
            await page.wait_for_url("**/functions/remote_stop/confirm*")
            drivers = page.locator("#fx-drivers")
            assert await drivers.get_attribute("data-impact") == "ends_now"
            assert "laadpas CARD-STOP1" in await drivers.inner_text()  # the operator sees the whole card
            await screenshot(page, "console-session-stop-confirm-nl-1280")
            assert await axe_violations(page) == []
            # cancel does nothing: back on the session page, still charging
            await page.get_by_role("link", name="Annuleren").click()
            await page.wait_for_url(f"**/console/sessions/{session.id}")
            await asyncio.sleep(0.5)
            assert await session_status(web_server, session.id) == "active"
            assert station.active_transactions() != {}
            # confirmed: the station stops it, and the page says so and leads back to the session
            await page.get_by_role("button", name="Laadsessie stoppen").click()
            await page.get_by_role("button", name=re.compile("^Ja, uitvoeren")).click()
            await page.locator("#answer-words").wait_for()
            assert (
                await page.locator("#answer-words").inner_text()
                == "De laadpaal heeft het stoppen geaccepteerd: de laadsessie stopt."
            )
            await screenshot(page, "console-session-stop-answer-nl-1280")
            await page.get_by_role("link", name="Terug naar de laadsessie").click()
            await page.wait_for_url(f"**/console/sessions/{session.id}")
            await eventually(lambda: station.active_transactions() == {})

            async def stopped() -> bool:
                return await session_status(web_server, session.id) == "completed"

            await eventually(stopped)
            await page.reload()
            assert await page.locator("#stop-session").count() == 0
        finally:
            await page.context.close()


async def test_the_helpdesk_confirms_before_it_stops_and_releases(browser: Any, web_server: Stekker) -> None:
    await card(web_server, "CARD-HDC1")
    station = SimulatedStation("FNH1", ocpp_url(web_server), unplug_delay=0.1)
    async with running(station):
        assert await station.start_session(1, "CARD-HDC1") is not None
        session = await eventually(lambda: running_session(web_server, "FNH1"))
        page = await login_page(browser, web_server, "helpdesk", bypass_csp=True)
        try:
            await page.goto("/console/helpdesk?q=FNH1")
            row = page.locator(f"tr[data-session='{session.id}']")
            await row.get_by_role("button", name=re.compile("^Stoppen en vrijgeven")).click()
            await page.wait_for_url("**/console/helpdesk/stop")
            assert await page.locator("h1").inner_text() == "Bevestigen: stoppen en vrijgeven"
            effect = await page.locator("#hd-effect").inner_text()
            assert "stopt de laadsessie van deze bestuurder" in effect
            assert "****HDC1" in await page.locator("main").inner_text()
            await screenshot(page, "console-helpdesk-confirm-nl-1280")
            assert await axe_violations(page) == []
            await page.set_viewport_size({"width": 390, "height": 800})
            await screenshot(page, "console-helpdesk-confirm-nl-390")
            await page.set_viewport_size({"width": 1280, "height": 900})
            await page.get_by_role("link", name="Annuleren").click()
            await page.wait_for_url("**/console/helpdesk?q=FNH1")
            await asyncio.sleep(0.5)
            assert await session_status(web_server, session.id) == "active"
            assert station.active_transactions() != {}
            await row.get_by_role("button", name=re.compile("^Stoppen en vrijgeven")).click()
            await page.get_by_role("button", name="Ja, stoppen en vrijgeven").click()
            await page.wait_for_url("**/console/helpdesk/flows/*")
            await eventually(lambda: station.active_transactions() == {})
        finally:
            await page.context.close()
