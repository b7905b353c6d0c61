"""The tariff pages of the console (requirement 158; the price the driver sees, 5 and 11).

Over HTTP (httpx, SQLite and PostgreSQL): who may draft, submit, approve, reject and set the
maximum price (exactly as the API: admin may not approve), CSRF, hostile names and
comments, bad input, a rejection without a comment, the over-cap warning and the history.
In Chromium: the operator drafts and submits, the municipality reviews the comparison and
approves, and once the version is active the public station page shows the new price;
axe scans of the review page, screenshots of the main pages.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from ocpp.v16 import call
from sqlalchemy import select

from stekker.app import Stekker
from stekker.db.base import utcnow
from stekker.db.models import Evse
from stekker.db.models_users import Role
from stekker.services import tariffs, users
from stekker.web.format import HOME
from stekker.web.tariffs_page import DraftForm, FormError, price_rows
from tests.peers import ocpp_station
from tests.web.conftest import PASSWORD, axe_violations, base_url, csrf_of, http_login, login_page, screenshot

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'
ROLES = (Role.ADMIN, Role.OPERATOR, Role.HELPDESK, Role.MUNICIPALITY, Role.READ_ONLY)

# --- the form, without a server ------------------------------------------------------------------


def test_the_simple_form_makes_an_ocpi_tariff() -> None:
    form = DraftForm(
        energy="0,35",
        parking="1.2",
        start="0,50",
        vat="21",
        grace="15",
        scope="location:3",
        effective_from="2026-12-01T00:00",
        alt_nl="€ 0,42 per kWh",
        note="winter",
    )
    draft = form.draft()
    assert draft.content == {
        "elements": [
            {
                "price_components": [
                    {"type": "ENERGY", "price": "0.35", "vat": "21", "step_size": 1},
                    {"type": "PARKING_TIME", "price": "1.2", "vat": "21", "step_size": 60},
                    {"type": "FLAT", "price": "0.5", "vat": "21", "step_size": 1},
                ]
            }
        ],
        "tariff_alt_text": [{"language": "nl", "text": "€ 0,42 per kWh"}],
    }
    assert draft.applies_to == [{"location_id": 3}]
    assert draft.parking_grace_minutes == 15
    assert draft.effective_from == datetime(2026, 11, 30, 23, 0, tzinfo=UTC)  # midnight in Amsterdam
    back = DraftForm.from_version(
        {
            "tariff": "STD",
            "name": "Standaard",
            "content": draft.content,
            "applies_to": draft.applies_to,
            "audience": "all",
            "parties": [],
            "parking_grace_minutes": 15,
            "effective_from": draft.effective_from,
            "note": "winter",
        }
    )
    assert (back.energy, back.parking, back.start, back.time, back.vat) == ("0.35", "1.2", "0.5", "", "21")
    assert back.scope == "location:3" and back.effective_from == "2026-12-01T00:00" and not back.complex
    rows = price_rows(draft.content)
    assert (rows[0].dimension, rows[0].price_incl_vat) == ("ENERGY", Decimal("0.4235"))


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"energy": ""}, "err_no_price"),
        ({"energy": "abc"}, "err_amount_energy"),
        ({"energy": "-1"}, "err_amount_energy"),
        ({"energy": "0.123456"}, "err_amount_energy"),
        ({"energy": "NaN"}, "err_amount_energy"),
        ({"vat": "121"}, "err_amount_vat"),
        ({"grace": "x"}, "err_grace"),
        ({"scope": "evse"}, "err_evse"),
        ({"scope": "location:x"}, "err_scope"),
        ({"effective_from": "morgen"}, "err_effective_from"),
        ({"audience": "everyone"}, "err_audience"),
    ],
)
def test_bad_form_input_says_what_is_wrong(changes: dict[str, str], key: str) -> None:
    form = DraftForm(energy="0.30")
    for name, value in changes.items():
        setattr(form, name, value)
    with pytest.raises(FormError) as caught:
        form.draft()
    assert str(caught.value) == key


# --- over HTTP -----------------------------------------------------------------------------------

Login = Callable[[str], Awaitable[httpx.AsyncClient]]


@pytest.fixture
async def login(server: Stekker) -> AsyncIterator[Login]:
    """`await login("operator")`: a client logged in through the form as that role."""
    for role in ROLES:
        await users.create_user(server.ctx, "test", role.value, PASSWORD, role)
    clients: list[httpx.AsyncClient] = []

    async def make(username: str) -> httpx.AsyncClient:
        client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}", timeout=30)
        clients.append(client)
        response = await http_login(client, username)
        assert response.status_code == 303, response.text
        return client

    yield make
    for client in clients:
        await client.aclose()


def _later(days: int = 1) -> str:
    """A datetime-local value (home time) `days` from now."""
    return (utcnow() + timedelta(days=days)).astimezone(HOME).strftime("%Y-%m-%dT%H:%M")


async def _post(client: httpx.AsyncClient, path: str, page: str, **fields: str) -> httpx.Response:
    """Post a console form with the CSRF token of `page` (the page the form is on)."""
    form = await client.get(page)
    return await client.post(path, data={"csrf_token": csrf_of(form.text), **fields})


async def _new_tariff(
    client: httpx.AsyncClient, code: str, energy: str = "0.30", name: str | None = None, **extra: str
) -> httpx.Response:
    fields = {
        "code": code,
        "name": name or f"Tarief {code}",
        "energy": energy,
        "vat": "21",
        "grace": "0",
        "scope": "all",
        "audience": "all",
        "effective_from": _later(),
        **extra,
    }
    return await _post(client, "/console/tariffs/new", "/console/tariffs/new", **fields)


async def _act(
    client: httpx.AsyncClient, code: str, version: int, action: str, **fields: str
) -> httpx.Response:
    page = f"/console/tariffs/{code}/versions/{version}"
    return await _post(client, f"{page}/{action}", "/console/tariffs", **fields)


async def test_roles_draft_submit_approve_exactly_as_the_api(login: Login, server: Stekker) -> None:
    operator, municipality = await login("operator"), await login("municipality")
    admin, reader, helpdesk = await login("admin"), await login("read-only"), await login("helpdesk")

    for client in (reader, helpdesk):  # not in their menu, and refused
        assert (await client.get("/console/tariffs")).status_code == 403
        refused = await client.post(
            "/console/tariffs/new",
            data={"csrf_token": csrf_of((await client.get("/console/")).text), "code": "X", "energy": "1"},
        )
        assert refused.status_code == 403
    new_form = await municipality.get("/console/tariffs/new")
    assert new_form.status_code == 403 and "Geen toegang" in new_form.text
    refused = await _post(municipality, "/console/tariffs/new", "/console/tariffs", code="MUNI", energy="0.1")
    assert refused.status_code == 403
    assert 'id="new-tariff"' not in (await municipality.get("/console/tariffs")).text

    created = await _new_tariff(operator, "STD", note="eerste voorstel")
    assert created.status_code == 303 and created.headers["location"] == "/console/tariffs/STD"
    listing = await operator.get("/console/tariffs")
    assert listing.status_code == 200 and "Tarief STD" in listing.text and "concept" in listing.text
    submitted = await _act(operator, "STD", 1, "submit")
    assert submitted.status_code == 303, submitted.text

    for client in (operator, admin):  # only the municipality decides: not even an admin
        for action in ("approve", "reject"):
            denied = await _act(client, "STD", 1, action, comment="ok")
            assert denied.status_code == 403, (action, denied.text)
    review = await admin.get("/console/tariffs/STD/versions/1")
    assert review.status_code == 200 and "Goedkeuren" not in review.text  # no buttons it may not press
    assert (await admin.get("/console/tariffs/caps")).status_code == 403
    assert (await operator.get("/console/tariffs/caps")).status_code == 403

    page = await municipality.get("/console/tariffs/STD/versions/1")
    assert page.status_code == 200
    assert "Goedkeuren" in page.text and "Afkeuren" in page.text and "Indienen" not in page.text
    assert (
        "Vergelijking op de referentiesessies" in page.text
        and "Kort bijladen" in page.text
        and "dinsdag 12:00: 5 kWh in 30 min" in page.text
    )
    assert "€\u00a01,82" in page.text  # 5 kWh x 0.30 + 21 % VAT on the short top-up (1.815), in cents
    assert "nadat hij geladen heeft" in page.text  # when a session parks: after it charged
    english = await municipality.get("/console/tariffs/STD/versions/1?lang=en")
    assert "Comparison on the reference sessions" in english.text and "Approve" in english.text
    assert "<h1>Tarieven</h1>" in (await municipality.get("/console/tariffs?lang=nl")).text  # back to Dutch
    approved = await _act(municipality, "STD", 1, "approve", comment="akkoord")
    assert approved.status_code == 303
    done = await municipality.get(approved.headers["location"])
    assert "Goedgekeurd: de versie gaat in" in done.text and "goedgekeurd, gaat nog in" in done.text

    history = await operator.get("/console/tariffs/STD")
    steps = re.findall(r"<tr>\s*<td>[^<]+</td>\s*<td>1</td>", history.text)
    assert len(steps) == 3  # draft, submitted, scheduled
    assert (
        "user:municipality" in history.text and "akkoord" in history.text and "user:operator" in history.text
    )
    assert "(gemeente)" in history.text and "(exploitant)" in history.text

    # the admin drafts, as the API's CONFIGURE allows
    assert (await admin.get("/console/tariffs/new")).status_code == 200
    assert (await _new_tariff(admin, "ADM")).status_code == 303


async def test_csrf_is_required_for_every_tariff_action(login: Login, server: Stekker) -> None:
    operator = await login("operator")
    assert (await _new_tariff(operator, "CSRF")).status_code == 303
    attempts = [
        ("/console/tariffs/new", {"code": "NOTOKEN", "energy": "0.3"}),
        ("/console/tariffs/CSRF/draft", {"energy": "0.5"}),
        ("/console/tariffs/CSRF/versions/1/submit", {}),
        ("/console/tariffs/CSRF/versions/1/withdraw", {}),
    ]
    for path, fields in attempts:
        refused = await operator.post(path, data=fields)
        assert refused.status_code == 403 and "niet van deze site" in refused.text, path
        wrong = await operator.post(path, data={"csrf_token": "0" * 64, **fields})
        assert wrong.status_code == 403, path
    cross = await operator.post(
        "/console/tariffs/CSRF/versions/1/submit",
        data={"csrf_token": csrf_of((await operator.get("/console/tariffs")).text)},
        headers={"Origin": "https://evil.example"},
    )
    assert cross.status_code == 403
    found = await tariffs.get_tariff(server.ctx, "CSRF")
    assert [v["status"] for v in found["versions"]] == ["draft"]
    with pytest.raises(tariffs.TariffNotFound):
        await tariffs.get_tariff(server.ctx, "NOTOKEN")


async def test_hostile_names_notes_and_comments_are_escaped(login: Login, server: Stekker) -> None:
    operator, municipality = await login("operator"), await login("municipality")
    assert (await _new_tariff(operator, "XSS", name=XSS, note=XSS, alt_nl=XSS)).status_code == 303
    assert (await _act(operator, "XSS", 1, "submit")).status_code == 303
    rejected = await _act(municipality, "XSS", 1, "reject", comment=XSS)
    assert rejected.status_code == 303
    for client, path in (
        (operator, "/console/tariffs"),
        (operator, "/console/tariffs/XSS"),
        (municipality, "/console/tariffs/XSS/versions/1"),
        (operator, "/console/tariffs/XSS/draft"),
    ):
        page = await client.get(path)
        assert page.status_code == 200, path
        assert "<script>alert" not in page.text and "<img src=x" not in page.text, path
        assert "&lt;script&gt;" in page.text, path
    for path in ("/console/tariffs/%3Cscript%3E", "/console/tariffs/XSS/versions/%3Cb%3E"):
        answer = await operator.get(path)
        assert answer.status_code in (400, 404) and "<script>" not in answer.text and "<b>" not in answer.text
    assert (await operator.get("/console/tariffs/XSS/versions/9")).status_code == 404


async def test_a_rejection_needs_a_comment_and_bad_input_gets_a_page_that_says_so(
    login: Login, server: Stekker
) -> None:
    operator, municipality = await login("operator"), await login("municipality")
    bad = await _new_tariff(operator, "BAD", energy="abc")
    assert bad.status_code == 400 and "De energieprijs is geen geldig bedrag" in bad.text
    assert 'value="abc"' in bad.text  # the form keeps what was typed
    none = await _new_tariff(operator, "BAD", energy="")
    assert none.status_code == 400 and "Vul minstens één prijs in." in none.text
    code = await _new_tariff(operator, "bad code!")
    assert code.status_code == 400 and "letters, digits" in code.text  # the service's message
    assert (await _new_tariff(operator, "REJ")).status_code == 303
    twice = await _new_tariff(operator, "REJ")
    assert twice.status_code == 400 and "already exists" in twice.text
    past = await _post(
        operator,
        "/console/tariffs/REJ/draft",
        "/console/tariffs/REJ/draft",
        energy="0.31",
        vat="21",
        grace="0",
        scope="all",
        audience="all",
        effective_from="2020-01-01T00:00",
    )
    assert past.status_code == 303  # a draft may say anything; submitting checks the moment
    early = await _act(operator, "REJ", 1, "submit")
    assert early.status_code == 409 and "is not in the future" in early.text
    fixed = await _post(
        operator,
        "/console/tariffs/REJ/draft",
        "/console/tariffs/REJ/draft",
        energy="0.31",
        vat="21",
        grace="0",
        scope="all",
        audience="all",
        effective_from=_later(),
    )
    assert fixed.status_code == 303
    assert (await _act(operator, "REJ", 1, "submit")).status_code == 303

    for comment in ("", "   "):
        refused = await _act(municipality, "REJ", 1, "reject", comment=comment)
        assert refused.status_code == 400 and "Schrijf waarom u afkeurt" in refused.text
    assert (await tariffs.get_version(server.ctx, "REJ", 1))["status"] == "submitted"
    rejected = await _act(municipality, "REJ", 1, "reject", comment="te duur voor de binnenstad")
    assert rejected.status_code == 303
    page = await operator.get("/console/tariffs/REJ")
    assert "afgekeurd" in page.text and "te duur voor de binnenstad" in page.text
    again = await _act(municipality, "REJ", 1, "approve")
    assert again.status_code == 409 and "only a submitted version can be approved" in again.text


async def test_the_maximum_price_is_set_by_the_municipality_and_seen_by_both(
    login: Login, server: Stekker
) -> None:
    operator, municipality = await login("operator"), await login("municipality")
    assert (await _new_tariff(operator, "CAP", energy="0.40")).status_code == 303
    assert (await _act(operator, "CAP", 1, "submit")).status_code == 303
    form = await municipality.get("/console/tariffs/caps")
    assert form.status_code == 200 and "Nieuwe maximumprijs" in form.text
    bad = await _post(municipality, "/console/tariffs/caps", "/console/tariffs/caps", per_kwh="duur")
    assert bad.status_code == 400 and "Het maximum per kWh is geen geldig bedrag." in bad.text
    saved = await _post(
        municipality, "/console/tariffs/caps", "/console/tariffs/caps", per_kwh="0,45", comment=XSS
    )
    assert saved.status_code == 303
    for client in (operator, municipality):
        listing = await client.get("/console/tariffs")
        assert "Maximumprijs (gemeente)" in listing.text and "€\u00a00,45" in listing.text
        assert "&lt;script&gt;" in listing.text and "<script>alert" not in listing.text
    # 0.40 + 21 % = 0.484 per kWh: over the cap on every reference session
    review = await municipality.get("/console/tariffs/CAP/versions/1")
    assert 'id="over-cap"' in review.text and "boven het maximum" in review.text
    refused = await _act(municipality, "CAP", 1, "approve")
    assert refused.status_code == 422 and "more than the maximum price" in refused.text
    assert (await tariffs.get_version(server.ctx, "CAP", 1))["status"] == "submitted"
    # the operator's next proposal over the cap cannot even be submitted
    assert (await _act(operator, "CAP", 1, "withdraw", comment="te hoog")).status_code == 303
    draft = await _post(
        operator,
        "/console/tariffs/CAP/draft",
        "/console/tariffs/CAP/draft",
        energy="0.50",
        vat="21",
        grace="0",
        scope="all",
        audience="all",
        effective_from=_later(),
    )
    assert draft.status_code == 303 and draft.headers["location"] == "/console/tariffs/CAP/versions/2"
    over = await _act(operator, "CAP", 2, "submit")
    assert over.status_code == 422 and "Short top-up" in over.text
    assert (await tariffs.get_version(server.ctx, "CAP", 2))["status"] == "draft"


# --- in Chromium ---------------------------------------------------------------------------------


def ocpp_url(server: Stekker) -> str:
    return f"ws://127.0.0.1:{server.ocpp_port}/ocpp"


class OffsetClock:
    """The server's clock, moved forward by the test."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return utcnow() + self.offset


@pytest.mark.asyncio(loop_scope="module")
async def test_the_municipality_approves_and_the_public_page_shows_the_new_price_once_active(
    browser: Any, web_server: Stekker
) -> None:
    from playwright.async_api import expect

    clock = OffsetClock()
    web_server.ctx.clock = clock
    async with ocpp_station(ocpp_url(web_server), "TARIFF1") as cp:
        await cp.call(call.StatusNotification(connector_id=1, error_code="NoError", status="Available"))
    async with web_server.ctx.db() as db:
        uid = (await db.execute(select(Evse.evse_id).where(Evse.station_id == "TARIFF1"))).scalar_one()
    assert uid is not None
    await tariffs.seed_demo_tariff(web_server.ctx)  # version 1 in effect: € 0,35 + VAT per kWh
    public = await browser.new_context(base_url=base_url(web_server))
    driver = await public.new_page()
    operator = await login_page(browser, web_server, "operator")
    municipality = await login_page(browser, web_server, "municipality", bypass_csp=True)
    try:
        await driver.goto(f"/p/{uid}")
        before = await driver.locator("#price-text").inner_text()
        assert "0,42" in before  # 0.35 + 21 %

        # the operator proposes € 0,40 per kWh from an hour from now
        await operator.goto("/console/tariffs")
        await operator.get_by_role("link", name="Demo tariff").click()
        await operator.get_by_role("link", name="Nieuwe versie voorstellen").click()
        await operator.get_by_label("Energie per kWh").fill("0,40")
        when = (datetime.now(UTC) + timedelta(hours=1)).astimezone(HOME).replace(second=0, microsecond=0)
        await operator.get_by_label("Gaat in op").fill(when.strftime("%Y-%m-%dT%H:%M"))
        await operator.get_by_label("Prijs in woorden (Nederlands, optioneel)").fill("")
        await operator.get_by_label("Prijs in woorden (Engels, optioneel)").fill("")
        await operator.get_by_label("Toelichting voor de gemeente").fill("Hogere inkoopprijs")
        await operator.get_by_role("button", name="Concept opslaan").click()
        await operator.wait_for_url("**/console/tariffs/DEMO/versions/2")
        await screenshot(operator, "console-tariff-draft")
        await operator.get_by_role("button", name="Indienen bij de gemeente").click()
        await expect(operator.locator("#done")).to_have_text("Ingediend bij de gemeente.")

        # the municipality reviews old against new and approves
        await municipality.goto("/console/tariffs")
        await screenshot(municipality, "console-tariffs")
        await municipality.get_by_role("link", name="versie 2").click()
        await municipality.wait_for_url("**/console/tariffs/DEMO/versions/2")
        table = municipality.get_by_role("table", name=re.compile("oud en nieuw naast elkaar"))
        assert await table.get_by_role("row").count() >= 3
        assert "Vergeleken met versie 1." in await municipality.get_by_role("main").inner_text()
        violations = await axe_violations(municipality)
        assert [(v["id"], v["impact"]) for v in violations] == []
        await screenshot(municipality, "console-tariff-review")
        await municipality.get_by_label("Toelichting bij goedkeuren (optioneel)").fill(
            "Akkoord, college 24-11"
        )
        await municipality.get_by_role("button", name="Goedkeuren").click()
        await expect(municipality.locator("#version-status")).to_have_text("goedgekeurd, gaat nog in")
        history = await municipality.locator("#tariff-history").inner_text()
        assert "Akkoord, college 24-11" in history and "user:municipality" in history

        # approved but not yet in effect: the driver still sees the old price and the change
        await driver.reload()
        assert "0,42" in await driver.locator("#price-text").inner_text()
        assert "verandert de prijs" in await driver.get_by_role("main").inner_text()

        # its moment comes; housekeeping's activation (called here) makes it active
        clock.offset = (when - datetime.now(UTC)) + timedelta(minutes=1)
        assert await tariffs.activate_due(web_server.ctx) == 1
        await municipality.reload()
        await expect(municipality.locator("#version-status")).to_have_text("geldt nu")
        await driver.reload()
        after = await driver.locator("#price-text").inner_text()
        assert "0,48" in after and "0,42" not in after  # 0.40 + 21 %
        await screenshot(driver, "public-evse-new-price")
    finally:
        web_server.ctx.clock = utcnow
        for context in (public, operator.context, municipality.context):
            await context.close()
