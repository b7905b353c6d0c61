"""The public EVSE page and what drivers send from it, over real HTTP against a running
Stekker, with a real OCPP 1.6 station:

- money: the CDR's billed total is what the console, the CLI and the API say, and the price
  text (public page, open data, OCPI alt text) gives the bill's energy line;
- opening hours: one meaning in the public page, OCPI and DATEX II;
- plugs by their names and power;
- a problem report end to end (form -> helpdesk list in the API, the CLI and the console),
  and hostile reports: too long, control characters, no or a stale token, another site,
  too many, too big, escaped when shown; nothing of them stored.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from ocpp.v16 import call
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.app import Stekker
from stekker.db.models import ChargingStation, Connector, Location
from stekker.db.models_problem_reports import ProblemReport
from stekker.domain.money import amount_text
from stekker.domain.problem_reports import REPORT_BURST
from stekker.services.tariffs import DEMO_TARIFF
from tests.observe import add_token
from tests.peers import ocpp_station
from tests.test_cdrs import TARIFF as CDR_TARIFF
from tests.test_cdrs import add_tariff, cdrs_of, detail
from tests.test_users_roles import PW, add_user, client_from, make_admin
from tests.web.conftest import http_login

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

XSS = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=1">'


async def _station(ocpp_url: str, station_id: str) -> None:
    async with ocpp_station(ocpp_url, station_id) as cp:
        await cp.call(call.StatusNotification(connector_id=1, error_code="NoError", status="Available"))


async def _uid(api: httpx.AsyncClient, station_id: str) -> str:
    uid: str = (await api.get(f"/api/stations/{station_id}")).json()["evses"][0]["evse_id"]
    return uid


async def _place(server: Stekker, station_id: str, opening: dict[str, Any] | None) -> None:
    async def job(db: AsyncSession) -> None:
        place = Location(
            name="Plein",
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


def _text(html: str) -> str:
    """The page's words, tags removed, whitespace folded."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


# --- money: what is shown is what is billed -------------------------------------------------


async def _charge(ocpp_url: str, station_id: str, token: str, wh: int) -> None:
    start = datetime.now(UTC) - timedelta(hours=3)

    def at(minutes: int) -> str:
        return (start + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")

    async with ocpp_station(ocpp_url, station_id) as cp:
        await cp.call(call.StatusNotification(connector_id=1, error_code="NoError", status="Preparing"))
        started = await cp.call(
            call.StartTransaction(connector_id=1, id_tag=token, meter_start=5_000, timestamp=at(0))
        )
        await cp.call(
            call.StatusNotification(connector_id=1, error_code="NoError", status="Charging", timestamp=at(0))
        )
        await cp.call(
            call.StopTransaction(
                meter_stop=5_000 + wh, timestamp=at(60), transaction_id=started.transaction_id, reason="Local"
            )
        )
        await cp.call(
            call.StatusNotification(
                connector_id=1, error_code="NoError", status="Available", timestamp=at(60)
            )
        )


async def test_every_edge_shows_the_billed_total_and_the_price_that_gives_it(
    server: Stekker, api: httpx.AsyncClient, ocpp_url: str, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo tariff (0.35 excl. + 21 % = 0.4235 per kWh, no parking within the hour) on
    27.777 kWh: 11.7635... billed 11.76. Every edge says € 11,76 / €11.76, and the price it
    shows (€ 0,4235) times the kWh gives that bill; the old `€ 0,42` would say 11.67."""
    await add_tariff(
        server, DEMO_TARIFF, effective_from=datetime.now(UTC) - timedelta(days=30), grace_minutes=15
    )
    await add_token(api, "MONEY-1")
    await _station(ocpp_url, "MONEY1")
    uid = await _uid(api, "MONEY1")
    await _charge(ocpp_url, "MONEY1", "MONEY-1", 27_777)
    [row] = await cdrs_of(api, "MONEY1")
    billed = Decimal(str(row["total_cost_incl_vat"]))
    assert billed == Decimal("11.76")
    energy_line = (await detail(api, row["cdr_uid"]))["document"]["total_energy_cost"]["incl_vat"]

    # the price text of the public page, the open data and the tariff's OCPI alt text
    page = _text((await api.get(f"/p/{uid}")).text)
    assert "Laden kost € 0,4235 per kWh" in page and "€ 0,42 " not in page
    english = _text((await api.get(f"/p/{uid}", params={"lang": "en"})).text)
    assert "Charging costs €0.4235 per kWh" in english and "€ 0," not in english  # one form per language
    price = (await api.get(f"/opendata/evses/{uid}/price")).json()
    for lang in ("nl", "en"):
        shown = re.search(r"€ ?(\d+[.,]\d+) per kWh", price["text"][lang])
        assert shown is not None
        per_kwh = Decimal(shown.group(1).replace(",", "."))
        assert (per_kwh * Decimal("27.777")).quantize(Decimal("0.01")) == Decimal(str(energy_line)) == billed
        assert price["alt_text"][lang] == price["text"][lang]  # the demo's alt text is the price text

    # the console (an operator's CDR page, nl and en) and the CLI
    token = await add_user(api, await make_admin(api), "olga", "operator")
    async with httpx.AsyncClient(base_url=str(api.base_url), timeout=30) as browser:
        assert (await http_login(browser, "olga", PW)).status_code == 303
        cdr_page = await browser.get(f"/console/cdrs/{row['cdr_uid']}")
        assert cdr_page.status_code == 200, cdr_page.text
        total = re.search(r'id="cdr-total">([^<]+)<', cdr_page.text)
        assert total is not None and total.group(1) == "€\u00a011,76"  # an amount never wraps
        assert amount_text(billed, "EUR", "nl") == "€ 11,76"
        session_page = await browser.get(f"/console/sessions/{row['session_id']}", params={"lang": "nl"})
        assert session_page.status_code == 200 and "€\u00a011,76" in session_page.text
        en_page = await browser.get(f"/console/cdrs/{row['cdr_uid']}", params={"lang": "en"})
        total = re.search(r'id="cdr-total">([^<]+)<', en_page.text)
        assert total is not None and total.group(1) == "€11.76"
    monkeypatch.setenv("STEKKER_API_TOKEN", token)
    listed = await cli("cdr", "list", "--station", "MONEY1")
    assert listed.exit_code == 0, listed.output
    assert "€11.76" in listed.output and "EUR 11.76" not in listed.output
    shown = await cli("cdr", "show", row["cdr_uid"])
    assert shown.exit_code == 0 and "€11.76" in shown.output, shown.output


# --- opening hours: one meaning ----------------------------------------------------------------


async def test_no_opening_hours_means_always_open_on_every_edge(
    server: Stekker, api: httpx.AsyncClient, ocpp_url: str
) -> None:
    await _station(ocpp_url, "HOURS1")
    uid = await _uid(api, "HOURS1")
    await _place(server, "HOURS1", None)
    page = _text((await api.get(f"/p/{uid}")).text)
    assert "Altijd open" in page and "Niet bekend" not in page
    assert "Always open" in _text((await api.get(f"/p/{uid}", params={"lang": "en"})).text)
    ocpi = (await api.get("/opendata/ocpi/locations")).text
    assert '"twentyfourseven":true' in ocpi.replace(" ", "")
    datex = (await api.get("/opendata/datex2/table.json")).text
    assert "afacOpenAllHours" in datex and "afacUnknownOperatingHours" not in datex

    # hours that say "not 24/7" and give none are the only unknown ones
    async with server.ctx.db() as db, db.begin():
        await db.execute(update(Location).values(opening_times={"twentyfourseven": False}))
    page = _text((await api.get(f"/p/{uid}", params={"lang": "nl"})).text)
    assert "De openingstijden zijn niet bekend" in page and "Altijd open" not in page


# --- plugs --------------------------------------------------------------------------------------


async def test_plugs_by_name_with_their_power(server: Stekker, api: httpx.AsyncClient, ocpp_url: str) -> None:
    await _station(ocpp_url, "PLUG1")
    uid = await _uid(api, "PLUG1")
    page = _text((await api.get(f"/p/{uid}")).text)
    assert "Type 2" in page and "tot 22 kW" in page and "IEC_62196" not in page
    # a public page may be cached by anyone in between: it sets no cookie
    plain = await api.get(f"/p/{uid}")
    assert "set-cookie" not in plain.headers and plain.headers["cache-control"].startswith("public")
    # the station is gone: the page says so, not the last "Beschikbaar" it sent (one status rule)
    assert "Status nu Offline" in page and "Beschikbaar" not in page
    async with server.ctx.db() as db, db.begin():
        await db.execute(
            update(Connector).values(
                standard="IEC_62196_T2_COMBO", power_type="DC", max_electric_power=50_000
            )
        )
    english = _text((await api.get(f"/p/{uid}", params={"lang": "en"})).text)
    assert "CCS" in english and "up to 50 kW" in english and "IEC_62196" not in english


# --- problem reports ------------------------------------------------------------------------------


async def _form(client: httpx.AsyncClient, uid: str, lang: str = "nl") -> str:
    page = await client.get(f"/p/{uid}/report", params={"lang": lang})
    assert page.status_code == 200, page.text
    assert page.headers["cache-control"] == "no-store"
    found = re.search(r'name="token" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


async def _stored(server: Stekker) -> int:
    async with server.ctx.db() as db:
        return int(await db.scalar(select(func.count()).select_from(ProblemReport)) or 0)


async def test_a_driver_reports_a_problem_and_the_helpdesk_has_it(
    server: Stekker, api: httpx.AsyncClient, ocpp_url: str, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _station(ocpp_url, "REPORT1")
    uid = await _uid(api, "REPORT1")
    page = await api.get(f"/p/{uid}")
    assert re.search(r'href="/p/[^"]+/report" id="report-link"', page.text)
    token = await _form(api, uid, "en")
    sent = await api.post(
        f"/p/{uid}/report",
        params={"lang": "en"},
        data={"token": token, "kind": "damaged", "message": f"Cable cut {XSS}", "contact": ""},
    )
    assert sent.status_code == 303 and sent.headers["location"].endswith("?reported=1")
    thanks = await api.get(sent.headers["location"] + "&lang=en")
    assert "The helpdesk has received your report." in thanks.text

    admin = await make_admin(api)
    helpdesk = await add_user(api, admin, "hanna", "helpdesk")
    listed = await api.get("/api/problem-reports", headers={"Authorization": f"Bearer {helpdesk}"})
    assert listed.status_code == 200, listed.text
    [report] = listed.json()
    assert report["evse_uid"] == uid and report["station_id"] == "REPORT1"
    assert report["kind"] == "damaged" and report["message"] == f"Cable cut {XSS}"
    assert report["contact"] is None and report["language"] == "en" and report["handled_at"] is None
    municipality = await add_user(api, admin, "mia", "municipality")
    denied = await api.get("/api/problem-reports", headers={"Authorization": f"Bearer {municipality}"})
    assert denied.status_code == 403

    monkeypatch.setenv("STEKKER_API_TOKEN", helpdesk)
    shown = await cli("problem", "list")
    assert shown.exit_code == 0, shown.output
    assert uid in shown.output and "station or cable damaged" in shown.output and XSS in shown.output
    as_json = await cli("problem", "list", "--output", "json")
    assert as_json.exit_code == 0 and json.loads(as_json.output)[0]["message"] == f"Cable cut {XSS}"

    # the console: the helpdesk's list shows it escaped, and "handled" takes it off
    async with httpx.AsyncClient(base_url=str(api.base_url), timeout=30) as browser:
        assert (await http_login(browser, "hanna", PW)).status_code == 303
        fragment = await browser.get("/console/helpdesk/problems/open")
        assert fragment.status_code == 200 and uid in fragment.text
        assert "<script>window" not in fragment.text and "&lt;script&gt;" in fragment.text
        assert "Station or cable damaged" in _text(
            (await browser.get("/console/helpdesk/problems", params={"lang": "en"})).text
        )
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', fragment.text)
        assert csrf is not None
        no_csrf = await browser.post(f"/console/helpdesk/problems/{report['id']}/handled", data={})
        assert no_csrf.status_code == 403
        done = await browser.post(
            f"/console/helpdesk/problems/{report['id']}/handled",
            data={"csrf_token": csrf.group(1), "back": "helpdesk"},
        )
        assert (
            done.status_code == 303 and done.headers["location"] == f"/console/helpdesk?done={report['id']}"
        )
    left = await api.get("/api/problem-reports", headers={"Authorization": f"Bearer {helpdesk}"})
    assert left.json() == []
    every = await api.get(
        "/api/problem-reports", params={"state": "all"}, headers={"Authorization": f"Bearer {helpdesk}"}
    )
    assert every.json()[0]["handled_by"] == "user:hanna"
    again = await api.post(
        f"/api/problem-reports/{report['id']}/handled", headers={"Authorization": f"Bearer {helpdesk}"}
    )
    assert again.status_code == 409


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"kind": "other", "message": "x" * 1001}, "hoogstens 1000 tekens"),
        ({"kind": "other", "message": "", "contact": ""}, "Beschrijf het probleem"),
        ({"kind": "other", "message": "kapot\x00"}, "onzichtbare tekens"),
        ({"kind": "explode", "message": "x"}, "Kies wat er aan de hand is"),
        ({"kind": "other", "message": "x", "contact": "0" * 201}, "hoogstens 200 tekens"),
        ({"kind": "other", "message": "x", "token": "1.abc"}, "formulier is verlopen"),
        ({"kind": "other", "message": "x", "token": ""}, "formulier is verlopen"),
    ],
)
async def test_a_bad_report_is_refused_with_the_reason_and_the_words_kept(
    server: Stekker, api: httpx.AsyncClient, ocpp_url: str, fields: dict[str, str], expected: str
) -> None:
    await _station(ocpp_url, "REPORT2")
    uid = await _uid(api, "REPORT2")
    token = await _form(api, uid)
    response = await api.post(f"/p/{uid}/report", data={"token": token, "contact": "", **fields})
    assert response.status_code == 400, response.text
    assert expected in response.text
    if fields.get("message") and "\x00" not in fields["message"]:
        assert fields["message"][:50] in response.text  # the driver need not type it again
    assert await _stored(server) == 0


async def test_hostile_report_requests(server: Stekker, api: httpx.AsyncClient, ocpp_url: str) -> None:
    await _station(ocpp_url, "REPORT3")
    uid = await _uid(api, "REPORT3")
    token = await _form(api, uid)
    good = {"token": token, "kind": "wont_start", "message": "", "contact": ""}

    # another website's form: refused before anything is read
    cross = await api.post(f"/p/{uid}/report", data=good, headers={"Origin": "https://evil.example"})
    assert cross.status_code == 403 and "andere website" in cross.text
    # a token for another EVSE, or a stale one
    await _station(ocpp_url, "REPORT4")
    other = await _uid(api, "REPORT4")
    moved = await api.post(f"/p/{other}/report", data=good)
    assert moved.status_code == 400 and "formulier is verlopen" in moved.text
    server.ctx.clock = lambda: datetime.now(UTC) + timedelta(hours=7)
    stale = await api.post(f"/p/{uid}/report", data=good)
    assert stale.status_code == 400
    server.ctx.clock = lambda: datetime.now(UTC)
    # not a form, too big, an unknown or malformed EVSE
    as_json = await api.post(f"/p/{uid}/report", json=good)
    assert as_json.status_code == 400
    huge = await api.post(f"/p/{uid}/report", content=b"message=" + b"x" * 200_000,
                          headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert huge.status_code in (400, 413)
    assert (await api.post("/p/NL*STK*NOPE*1/report", data=good)).status_code in (400, 404)
    assert (await api.get("/p/NL*STK*NOPE*1/report")).status_code == 404
    assert (await api.get("/p/%3Cscript%3E/report")).status_code in (400, 404, 422)
    assert await _stored(server) == 0

    # the throttle: REPORT_BURST at once from one address, then a 429 that says when
    async with client_from(server, "127.0.0.7") as driver:
        for _ in range(REPORT_BURST):
            fresh = await _form(driver, uid)
            sent = await driver.post(f"/p/{uid}/report", data={**good, "token": fresh})
            assert sent.status_code == 303, sent.text
        fresh = await _form(driver, uid)
        refused = await driver.post(f"/p/{uid}/report", data={**good, "token": fresh})
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
        assert "te veel meldingen" in refused.text
    async with client_from(server, "127.0.0.8") as neighbour:  # another address is not slowed
        fresh = await _form(neighbour, uid)
        assert (await neighbour.post(f"/p/{uid}/report", data={**good, "token": fresh})).status_code == 303
    assert await _stored(server) == REPORT_BURST + 1


async def test_the_report_api_refuses_bad_ids(api: httpx.AsyncClient) -> None:
    admin = await make_admin(api)
    auth = {"Authorization": f"Bearer {admin}"}
    assert (await api.post("/api/problem-reports/0/handled", headers=auth)).status_code == 422
    assert (await api.post("/api/problem-reports/x/handled", headers=auth)).status_code == 422
    assert (await api.post("/api/problem-reports/99/handled", headers=auth)).status_code == 404
    assert (await api.get("/api/problem-reports", params={"state": "bogus"}, headers=auth)).status_code == 422
    assert (await api.get("/api/problem-reports", params={"limit": 0}, headers=auth)).status_code == 422
    assert (await api.get("/api/problem-reports")).status_code == 401


async def test_a_tariff_without_its_own_alt_text_is_published_with_the_price_in_words(
    server: Stekker, api: httpx.AsyncClient, ocpp_url: str
) -> None:
    """What an eMSP shows its drivers (OCPI `tariff_alt_text`) is our price text, by the same
    money rule, when the operator wrote none: 0.30 + 21 % is € 0,363 per kWh, not € 0,36."""
    await _station(ocpp_url, "ALT1")
    await _place(server, "ALT1", None)
    await add_tariff(server, CDR_TARIFF, effective_from=datetime.now(UTC) - timedelta(days=1))
    body = (await api.get("/opendata/ocpi/tariffs")).json()
    tariffs = body["data"] if isinstance(body, dict) else body
    [tariff] = [t for t in tariffs if t["id"] == "STD"]
    texts = {t["language"]: t["text"] for t in tariff["tariff_alt_text"]}
    assert texts["nl"].startswith("Laden kost € 0,363 per kWh. Parkeren na het laden kost € 2,904 per uur")
    assert texts["en"].startswith(
        "Charging costs €0.363 per kWh. Parking after charging costs €2.904 per hour"
    )


async def test_the_console_list_is_the_helpdesks_and_refuses_bad_input(api: httpx.AsyncClient) -> None:
    admin = await make_admin(api)
    await add_user(api, admin, "mia", "municipality")
    await add_user(api, admin, "hanna", "helpdesk")
    async with httpx.AsyncClient(base_url=str(api.base_url), timeout=30) as municipality:
        assert (await http_login(municipality, "mia", PW)).status_code == 303
        assert (await municipality.get("/console/helpdesk/problems")).status_code == 403
        assert (await municipality.get("/console/helpdesk/problems/open")).status_code == 403
    async with httpx.AsyncClient(base_url=str(api.base_url), timeout=30) as helpdesk:
        assert (await http_login(helpdesk, "hanna", PW)).status_code == 303
        page = await helpdesk.get("/console/helpdesk/problems", params={"all": "1"})
        assert page.status_code == 200 and "Nog geen meldingen." in page.text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', (await helpdesk.get("/console/helpdesk")).text)
        assert csrf is not None
        for bad, status in (("abc", 400), ("0", 400), ("99", 404), ("9" * 30, 400)):
            answer = await helpdesk.post(
                f"/console/helpdesk/problems/{bad}/handled", data={"csrf_token": csrf.group(1)}
            )
            assert answer.status_code == status, (bad, answer.status_code)
        cross = await helpdesk.post(
            "/console/helpdesk/problems/99/handled",
            data={"csrf_token": csrf.group(1)},
            headers={"Origin": "https://evil.example"},
        )
        assert cross.status_code == 403
