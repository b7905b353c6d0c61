"""Each role's dashboard starts with what waits for that role, each a link to where it is
done; a tariff in force that was never approved says so wherever it is shown. Real Chromium,
real OCPP stations, screenshots at 1280 and 390 px in Dutch and English."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from ocpp.v16 import call
from sqlalchemy import select

from stekker.app import Stekker
from stekker.db.models import Evse
from stekker.db.models_ocpi import OcpiOutboxItem, OutboxStatus
from stekker.domain.problem_reports import ProblemKind, ReportDraft
from stekker.services import cdrs, ocpi_partners, problem_reports, tariffs, users
from stekker.services.tariffs import DEMO_TARIFF, Draft, seed_demo_tariff
from stekker.services.tokens import TokenInput, upsert_token
from tests.peers import now_iso, ocpp_station
from tests.web.conftest import axe_violations, base_url, http_login, login_page, screenshot

pytestmark = pytest.mark.asyncio(loop_scope="module")

WIDTHS = (1280, 390)


def ocpp_url(server: Stekker) -> str:
    return f"ws://127.0.0.1:{server.ocpp_port}/ocpp"


async def _waiting(page: Any) -> dict[str, tuple[str, str]]:
    """key → (the words, where the link goes) of each entry in "Wacht op u"."""
    found: dict[str, tuple[str, str]] = {}
    for item in await page.locator("#waiting [data-waiting]").all():
        link = item.locator("a.waiting-link")
        found[await item.get_attribute("data-waiting")] = (
            (await link.inner_text()).strip(),
            await link.get_attribute("href"),
        )
    return found


async def _shoot(page: Any, name: str) -> None:
    for lang in ("nl", "en"):
        await page.goto(f"/console/?lang={lang}")
        for width in WIDTHS:
            await page.set_viewport_size({"width": width, "height": 900})
            await screenshot(page, f"dashboard-{name}-{lang}-{width}")
            # the page fits the phone: nothing scrolls sideways in the waiting list
            box = await page.locator("#waiting").bounding_box()
            assert box is not None and box["x"] + box["width"] <= width
    await page.goto("/console/?lang=nl")


async def _dead_push(server: Stekker) -> None:
    """A roaming partner that is still registering, and a push to one that was given up."""
    partner, _token = await ocpi_partners.issue_registration(
        server.ctx, actor="user:admin", name="Hub Noord", parties=["NL/ABC"]
    )

    async def job(db: Any) -> None:
        db.add(
            OcpiOutboxItem(
                partner_id=partner["id"],
                kind="sessions",
                key="session:1",
                method="PUT",
                url="https://hub.example/ocpi/sessions/1",
                body={},
                status=OutboxStatus.DEAD,
                attempts=12,
                last_error="503 from the hub",
            )
        )

    await server.ctx.write(job)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fleet(web_server: Stekker) -> Any:
    """The state every dashboard reads: the demo tariff (in force, never approved), a
    proposal waiting for the municipality, a faulted and an offline station, a pending
    partner with a given-up push."""
    ctx = web_server.ctx
    assert await seed_demo_tariff(ctx)
    await tariffs.create_tariff(
        ctx,
        actor="user:operator",
        code="NACHT",
        name="Nachttarief",
        currency="EUR",
        draft=Draft(content=DEMO_TARIFF, effective_from=ctx.now() + timedelta(days=7)),
    )
    await tariffs.submit(ctx, actor="user:operator", code="NACHT", version=1)
    await _dead_push(web_server)
    async with ocpp_station(ocpp_url(web_server), "DASH-OFF"):
        pass
    async with ocpp_station(ocpp_url(web_server), "DASH-FAULT") as cp:
        await cp.call(call.StatusNotification(connector_id=1, error_code="GroundFailure", status="Faulted"))
        async with ctx.db() as db:
            uid = (await db.execute(select(Evse.evse_id).where(Evse.station_id == "DASH-FAULT"))).scalar_one()
        draft = ReportDraft(ProblemKind.WONT_START, "Het scherm blijft zwart.", None)
        await problem_reports.report(ctx, evse_uid=uid, draft=draft, language="nl")
        yield cp


async def test_the_municipality_sees_the_tariff_to_decide_first(
    browser: Any, web_server: Stekker, fleet: Any
) -> None:
    page = await login_page(browser, web_server, "municipality")
    try:
        waiting = await _waiting(page)
        assert list(waiting) == ["wait_tariff_decide", "wait_tariff_unapproved"]
        assert waiting["wait_tariff_decide"] == (
            "1 tarief wacht op uw besluit",
            "/console/tariffs/NACHT/versions/1",
        )
        assert waiting["wait_tariff_unapproved"] == (
            "1 tarief geldt zonder goedkeuring van de gemeente",
            "/console/tariffs/DEMO/versions/1",
        )
        # the first thing on the page, above the fleet's figures
        first = await page.locator("main h2").first.inner_text()
        assert first == "Wacht op u"
        await _shoot(page, "municipality")
        await page.get_by_role("link", name="1 tarief wacht op uw besluit").click()
        await page.wait_for_url("**/console/tariffs/NACHT/versions/1")
        assert await page.get_by_role("button", name=re.compile("Goedkeuren")).count() == 1
        await page.goto("/console/?lang=en")
        assert (await _waiting(page))["wait_tariff_decide"][0] == "1 tariff awaits your decision"
        await page.goto("/console/?lang=nl")
    finally:
        await page.context.close()


async def test_the_operator_sees_faulted_offline_and_given_up_pushes(
    browser: Any, web_server: Stekker, fleet: Any
) -> None:
    page = await login_page(browser, web_server, "operator", bypass_csp=True)
    try:
        assert await axe_violations(page) == []
        waiting = await _waiting(page)
        assert list(waiting) == [
            "wait_faulted",
            "wait_problems",
            "wait_offline",
            "wait_ocpi_dead",
            "wait_tariff_unapproved",
        ]
        assert waiting["wait_faulted"] == ("1 laadpaal in storing", "/console/stations?status=faulted")
        assert waiting["wait_offline"] == ("1 laadpaal offline", "/console/stations?status=offline")
        assert waiting["wait_ocpi_dead"][0] == "1 OCPI-bericht aan een partner opgegeven"
        examples = page.locator('[data-waiting="wait_faulted"] .waiting-examples a')
        assert await examples.all_inner_texts() == ["DASH-FAULT"]
        item = page.locator('[data-waiting="wait_faulted"]')
        assert "bad" in (await item.get_attribute("class") or "")
        await _shoot(page, "operator")
        await page.get_by_role("link", name="1 laadpaal in storing").click()
        await page.wait_for_url("**/console/stations?status=faulted")
        rows = page.locator("tr[data-station]")
        assert await rows.count() == 1
        assert await rows.first.get_attribute("data-station") == "DASH-FAULT"
        badge = rows.first.locator('[data-badge="station"]').first
        assert await badge.inner_text() == "Storing"
    finally:
        await page.context.close()


async def test_the_helpdesk_sees_the_stations_drivers_will_call_about(
    browser: Any, web_server: Stekker, fleet: Any
) -> None:
    page = await login_page(browser, web_server, "helpdesk")
    try:
        waiting = await _waiting(page)
        assert list(waiting) == ["wait_problems", "wait_faulted", "wait_offline"]
        assert waiting["wait_problems"] == (
            "1 probleemmelding van een bestuurder",
            "/console/helpdesk/problems",
        )
        await _shoot(page, "helpdesk")
        await page.get_by_role("link", name="1 probleemmelding van een bestuurder").click()
        await page.wait_for_url("**/console/helpdesk/problems")
        assert await page.get_by_text("Het scherm blijft zwart.").count() == 1
        await page.goto("/console/")
        await page.get_by_role("link", name="DASH-FAULT").click()
        await page.wait_for_url("**/console/stations/DASH-FAULT")
        assert await page.locator("#station-status").inner_text() == "Storing"
    finally:
        await page.context.close()


async def test_the_admin_sees_partners_and_accounts_waiting(
    browser: Any, web_server: Stekker, fleet: Any
) -> None:
    page = await login_page(browser, web_server, "admin")
    try:
        waiting = await _waiting(page)
        assert list(waiting) == ["wait_partners_pending", "wait_users_new"]
        text, href = waiting["wait_partners_pending"]
        assert text == "1 roamingpartner heeft de registratie nog niet afgerond"
        assert href.startswith("/docs#")  # partners are managed through the API (documented there)
        assert (
            "(te regelen via de API)"
            in await page.locator('[data-waiting="wait_partners_pending"]').inner_text()
        )
        names = await page.locator('[data-waiting="wait_users_new"] .waiting-examples a').all_inner_texts()
        assert "admin" not in names  # who is logged in has logged in
        await _shoot(page, "admin")
        await page.get_by_role("link", name=re.compile("nog nooit ingelogd")).click()
        await page.wait_for_url("**/console/users")
    finally:
        await page.context.close()


async def test_read_only_is_told_nothing_waits(browser: Any, web_server: Stekker, fleet: Any) -> None:
    page = await login_page(browser, web_server, "read-only")
    try:
        assert await page.locator("#waiting-none").inner_text() == "Er wacht nu niets op u."
        await _shoot(page, "read-only")
    finally:
        await page.context.close()


async def _a_cdr_priced_by_the_demo_tariff(server: Stekker) -> str:
    """A real 1.6 session at a station, stopped: the CDR the demo tariff priced."""
    await upsert_token(server.ctx, "user:operator", TokenInput(uid="CARD-CDR"))
    async with ocpp_station(ocpp_url(server), "DASH-CDR") as cp:
        started = await cp.call(
            call.StartTransaction(connector_id=1, id_tag="CARD-CDR", meter_start=1000, timestamp=now_iso())
        )
        await cp.call(
            call.StopTransaction(meter_stop=6000, timestamp=now_iso(), transaction_id=started.transaction_id)
        )

    view = await cdrs.build_cdr(server.ctx, started.transaction_id)
    assert view is not None
    return view.cdr_uid


async def test_a_tariff_never_approved_says_so_everywhere(
    browser: Any, web_server: Stekker, fleet: Any
) -> None:
    cdr = await _a_cdr_priced_by_the_demo_tariff(web_server)
    page = await login_page(browser, web_server, "municipality")
    try:
        for path in (
            "/console/tariffs",
            "/console/tariffs/DEMO",
            "/console/tariffs/DEMO/versions/1",
            f"/console/cdrs/{cdr}",
        ):
            await page.goto(path)
            badges = page.locator('[data-badge="tariff_approval"]')
            assert await badges.count() >= 1, path
            assert await badges.first.inner_text() == "nooit goedgekeurd"
            assert "warn" in (await badges.first.get_attribute("class") or "")
            await screenshot(
                page, "tariff-never-approved-" + path.strip("/").replace("/", "-").replace("*", "_")
            )
        for path in ("/console/tariffs/DEMO", "/console/tariffs/DEMO/versions/1"):
            await page.goto(path)
            assert await page.locator("#never-approved-note").count() == 1, path
        # the proposal is not in force: nothing to say about approval yet
        await page.goto("/console/tariffs/NACHT")
        assert await page.locator('[data-badge="tariff_approval"]').count() == 0
    finally:
        await page.context.close()
    _token, secret = await users.create_token(web_server.ctx, "user:admin", "operator", "test", None)
    headers = {"Authorization": f"Bearer {secret}"}
    async with httpx.AsyncClient(base_url=base_url(web_server), headers=headers) as client:
        listed = (await client.get("/api/tariffs")).json()
        by_code = {t["code"]: t for t in listed}
        assert by_code["DEMO"]["active_never_approved"] is True
        assert by_code["NACHT"]["active_never_approved"] is False
        version = (await client.get("/api/tariffs/DEMO/versions/1")).json()
        assert version["never_approved"] is True
        detail = (await client.get("/api/tariffs/DEMO")).json()
        assert [v["never_approved"] for v in detail["versions"]] == [True]


async def test_the_dashboard_fragment_refuses_hostile_input_and_strangers(
    browser: Any, web_server: Stekker, fleet: Any
) -> None:
    async with httpx.AsyncClient(base_url=base_url(web_server)) as client:
        answer = await client.get("/console/", headers={"HX-Request": "true"})
        assert answer.status_code in (302, 303, 401) or "/console/login" in answer.headers.get(
            "HX-Redirect", ""
        )
        assert "Wacht op u" not in answer.text
        await http_login(client, "helpdesk")
        fragment = await client.get("/console/?lang=<script>", headers={"HX-Request": "true"})
        assert fragment.status_code == 200
        assert "<script>" not in fragment.text
        assert 'data-waiting="wait_faulted"' in fragment.text
        assert "wait_tariff" not in fragment.text  # the helpdesk does not decide tariffs
