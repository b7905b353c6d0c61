"""What charging costs, in words and as data (requirement 5): the sentences for every official
OCPI tariff example, and the public price endpoint of an EVSE for ad-hoc and contract drivers."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from ocpp.v16 import call
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.app import Stekker
from stekker.db.models_tariffs import TariffRecord, TariffVersion
from stekker.domain.money import amount_text, unit_price_text
from stekker.domain.price_text import describe, price_texts, summarize
from stekker.domain.tariffs import tariff_from_ocpi
from tests.peers import ocpp_station
from tests.test_users_roles import make_admin

FIXTURES = Path("/work/shared/fixtures/ocpi/2.2.1")
FILES = sorted(FIXTURES.glob("tariff*.json"))


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data.get("data", data) if "elements" not in data else data


# --- words ---------------------------------------------------------------------------------------


def test_money_is_written_the_dutch_and_the_english_way() -> None:
    assert unit_price_text(Decimal("0.35"), "EUR", "nl") == "€ 0,35"
    assert unit_price_text(Decimal("0.35"), "EUR", "en") == "€0.35"
    assert amount_text(Decimal("1234.5"), "EUR", "nl") == "€ 1.234,50"
    assert amount_text(Decimal("1234.5"), "EUR", "en") == "€1,234.50"
    assert unit_price_text(Decimal("0.275"), "EUR", "nl") == "€ 0,275"  # a real per-kWh price, not rounded
    assert amount_text(Decimal("1.99880"), "EUR", "en") == "€2.00"
    assert amount_text(Decimal("3"), "SEK", "nl") == "SEK 3,00"


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_every_official_example_reads_sensibly(path: Path) -> None:
    data = json.loads(path.read_text())
    tariff = tariff_from_ocpi(data.get("data", data))
    texts = price_texts(tariff, timedelta(minutes=15))
    assert set(texts) == {"nl", "en"}
    for lang, text in texts.items():
        assert text.endswith(".") and "None" not in text and "  " not in text
        if lang == "nl":  # Dutch money: "€ 0,25", never the English "€0.25"
            assert ("€0" not in text and "inclusief btw" in text) or text == "Laden en parkeren zijn gratis."
        else:
            assert "€ " not in text and (
                "Prices include VAT." in text or text == "Charging and parking are free."
            )
    summary = summarize(tariff)
    for element in summary.elements:
        for price in element.prices:
            assert price.price_incl_vat >= price.price_excl_vat


@pytest.mark.parametrize(
    ("name", "nl", "en"),
    [
        (
            "tariff_10_025kwh_parking_start.json",
            "Laden kost € 0,275 per kWh, plus € 0,60 per laadsessie. Parkeren na het laden kost"
            " € 2,40 per uur (afgerekend per 15 minuten), de eerste 15 minuten gratis."
            " Prijzen zijn inclusief btw.",
            "Charging costs €0.275 per kWh, plus €0.60 per session. Parking after charging costs"
            " €2.40 per hour (billed per 15 minutes), the first 15 minutes free. Prices include VAT.",
        ),
        (
            "tariffrestriction_example_max_power.json",
            "Laden kost € 0,24 per kWh bij een laadvermogen onder 16 kW; € 0,42 per kWh bij een laadvermogen"
            " onder 32 kW; anders € 0,60 per kWh. Prijzen zijn inclusief btw.",
            "Charging costs €0.24 per kWh when charging at less than 16 kW; €0.42 per kWh when charging"
            " at less than 32 kW; otherwise €0.60 per kWh. Prices include VAT.",
        ),
        ("tariff_5_free_of_charge.json", "Laden en parkeren zijn gratis.", "Charging and parking are free."),
        (
            "tariff_12_025kwh_min_price.json",
            "Laden kost € 0,275 per kWh. Een laadsessie kost minimaal € 0,55. Prijzen zijn inclusief btw.",
            "Charging costs €0.275 per kWh. A session costs at least €0.55. Prices include VAT.",
        ),
        (
            "tariff_6_025kwh_start_max_price.json",
            "Laden kost € 0,275 per kWh, plus € 0,60 per laadsessie. Een laadsessie kost maximaal € 11,00."
            " Prijzen zijn inclusief btw.",
            "Charging costs €0.275 per kWh, plus €0.60 per session. A session costs at most €11.00."
            " Prices include VAT.",
        ),
    ],
)
def test_sentences_of_chosen_examples(name: str, nl: str, en: str) -> None:
    texts = price_texts(tariff_from_ocpi(fixture(name)), timedelta(minutes=15))
    assert texts == {"nl": nl, "en": en}


def test_restrictions_in_plain_words() -> None:
    complex_ = describe(summarize(tariff_from_ocpi(fixture("tariff_4_complex.json")), timedelta(0)), "nl")
    weekdays = "€ 2,40 per uur (afgerekend per 10 minuten) op maandag t/m vrijdag"
    assert f"{weekdays} bij een laadstroom van 32 A of meer" in complex_
    assert "van 10:00 tot 17:00 op zaterdag; anders niets." in complex_
    assert "plus € 2,88 per laadsessie" in complex_  # 2.875 incl. VAT, billed as a line: in cents
    first_hour = price_texts(tariff_from_ocpi(fixture("tariff_7_first_hour_kwh_free.json")))
    assert "Laden kost niets voor de eerste 1 kWh; € 0,20 per kWh vanaf 1 kWh geladen." in first_hour["nl"]
    assert "Parking after charging costs nothing during the first hour;" in first_hour["en"]
    reservation = price_texts(tariff_from_ocpi(fixture("tariff_17_reservation_with_expire_fee.json")))
    assert "Een verlopen reservering kost € 4,80 eenmalig." in reservation["nl"]
    assert "A reservation costs €2.40 per hour (billed per 10 minutes)." in reservation["en"]
    summary = summarize(tariff_from_ocpi(fixture("tariff_4_complex.json")))
    weekend = summary.elements[3]
    assert weekend.conditions == {"min_current": Decimal("32.0"), "day_of_week": ["SATURDAY", "SUNDAY"]}
    assert weekend.prices[0].kind == "charging_time" and weekend.prices[0].price_incl_vat == Decimal("1.5")


# --- the public endpoint --------------------------------------------------------------------------


async def _add_tariff(
    server: Stekker,
    code: str,
    content: dict[str, Any],
    *,
    audience: str = "all",
    parties: list[str] | None = None,
    versions: list[tuple[int, str, datetime, dict[str, Any]]] | None = None,
    grace: int = 0,
    applies_to: list[dict[str, Any]] | None = None,
) -> None:
    """A tariff with approved versions straight in the database (as the approval workflow leaves them)."""
    now = server.ctx.now()

    async def job(db: AsyncSession) -> None:
        record = TariffRecord(code=code, name=code, currency="EUR", created_by="test")
        db.add(record)
        await db.flush()
        for number, status, effective, body in versions or [(1, "active", now - timedelta(days=1), content)]:
            db.add(
                TariffVersion(
                    tariff_id=record.id,
                    version=number,
                    status=status,
                    content=body,
                    applies_to=applies_to or [{"all": True}],
                    audience=audience,
                    parties=parties or [],
                    energy_suppliers=[],
                    parking_grace_minutes=grace,
                    effective_from=effective,
                    created_by="test",
                )
            )

    await server.ctx.write(job)


async def _evse(api: httpx.AsyncClient, ocpp_url: str, station_id: str) -> str:
    async with ocpp_station(ocpp_url, station_id) as cp:
        await cp.call(call.StatusNotification(connector_id=1, error_code="NoError", status="Available"))
    station = (await api.get(f"/api/stations/{station_id}")).json()
    uid: str = station["evses"][0]["evse_id"]
    return uid


async def test_the_price_of_an_evse_for_ad_hoc_and_contract_drivers(
    api: httpx.AsyncClient, server: Stekker, ocpp_url: str
) -> None:
    uid = await _evse(api, ocpp_url, "PRICE1")
    now = server.ctx.now()
    adhoc = fixture("tariff_10_025kwh_parking_start.json")
    newer = {**adhoc, "elements": [{"price_components": [{"type": "ENERGY", "price": 0.3, "vat": 21.0}]}]}
    await _add_tariff(
        server,
        "ADHOC",
        adhoc,
        audience="adhoc",
        grace=15,
        versions=[
            (1, "active", now - timedelta(days=2), adhoc),
            (2, "scheduled", now + timedelta(days=7), newer),
        ],
    )
    await _add_tariff(
        server, "ABC-CONTRACT", fixture("tariff_2_alt_text.json"), audience="contract", parties=["NL-ABC"]
    )
    await make_admin(api)  # the API is closed now; the price stays public

    response = await api.get(f"/opendata/evses/{uid}/price")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["for"] == "adhoc" and body["party"] is None
    assert body["tariff"]["code"] == "ADHOC" and body["tariff"]["version"] == 1
    assert body["evse_status"] == "Available"
    assert body["connectors"][0]["status"] == "Available"
    assert body["text"]["nl"].startswith("Laden kost € 0,275 per kWh, plus € 0,60 per laadsessie.")
    assert "de eerste 15 minuten gratis" in body["text"]["nl"]
    assert body["text"]["en"].startswith("Charging costs €0.275 per kWh")
    prices = {p["kind"]: p for p in body["summary"]["elements"][0]["prices"]}
    assert Decimal(prices["energy"]["price_excl_vat"]) == Decimal("0.25")
    assert Decimal(prices["energy"]["price_incl_vat"]) == Decimal("0.275")
    assert Decimal(prices["parking_time"]["price_incl_vat"]) == Decimal("2.4")
    assert body["summary"]["parking_grace_minutes"] == 15
    upcoming = body["upcoming"]
    assert upcoming["tariff"]["version"] == 2
    assert upcoming["text"]["nl"] == "Laden kost € 0,363 per kWh. Prijzen zijn inclusief btw."
    assert "token" not in response.text and "uid" not in json.dumps(body["connectors"])

    contract = (
        await api.get(f"/opendata/evses/{uid}/price", params={"party": "NL-ABC", "lang": "en"})
    ).json()
    assert contract["for"] == "party" and contract["tariff"]["code"] == "ABC-CONTRACT"
    assert contract["text"] == {  # 1.90 excl. + 5.2 % is what is billed, not the alt text's 2.00
        "en": "Charging costs €1.9988 per hour (billed per 5 minutes). Prices include VAT."
    }
    assert contract["alt_text"] == {"en": "2.00 euro p/hour including VAT."}
    assert contract["upcoming"] is None
    other = (await api.get(f"/opendata/evses/{uid}/price", params={"party": "NL-XYZ"})).json()
    assert other["tariff"] is None  # a contract driver of another eMSP: no tariff for them here
    assert other["text"]["nl"] == "Prijs onbekend, vraag de helpdesk."


async def test_no_tariff_is_a_clear_answer_not_an_error(api: httpx.AsyncClient, ocpp_url: str) -> None:
    uid = await _evse(api, ocpp_url, "PRICE2")
    response = await api.get(f"/opendata/evses/{uid}/price", params={"lang": "nl"})
    assert response.status_code == 200
    body = response.json()
    assert body["tariff"] is None and body["summary"] is None and body["upcoming"] is None
    assert body["text"] == {"nl": "Prijs onbekend, vraag de helpdesk."}


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("NL*STK*ENOPE*1", {}, 404),
        ("NL*STK*E<script>*1", {}, 422),
        ("x" * 49, {}, 422),
        ("'%20OR%201=1", {}, 422),
        ("NL*STK*EPRICE3*1", {"party": "nl-abc"}, 422),
        ("NL*STK*EPRICE3*1", {"party": "NL-ABCD"}, 422),
        ("NL*STK*EPRICE3*1", {"supplier": "Eneco\x00"}, 422),
        ("NL*STK*EPRICE3*1", {"supplier": "x" * 65}, 422),
        ("NL*STK*EPRICE3*1", {"lang": "de"}, 422),
    ],
)
async def test_hostile_requests_get_a_clear_4xx(
    api: httpx.AsyncClient, ocpp_url: str, path: str, params: dict[str, str], status: int
) -> None:
    await _evse(api, ocpp_url, "PRICE3")
    response = await api.get(f"/opendata/evses/{path}/price", params=params)
    assert response.status_code == status, response.text
    assert response.json()["detail"]


async def test_a_connector_with_its_own_tariff(
    api: httpx.AsyncClient, server: Stekker, ocpp_url: str
) -> None:
    uid = await _evse(api, ocpp_url, "PRICE3")
    await _add_tariff(server, "NET", fixture("tariff_8_simple_025kwh.json"))
    plug = {"elements": [{"price_components": [{"type": "ENERGY", "price": 0.40, "vat": 21.0}]}]}
    await _add_tariff(server, "PLUG1", plug, applies_to=[{"evse_uid": uid, "connector": 1}])

    evse = (await api.get(f"/opendata/evses/{uid}/price")).json()
    assert evse["tariff"]["code"] == "NET"
    assert evse["connectors"][0]["tariff"]["code"] == "PLUG1"  # it differs: shown per connector
    one = (await api.get(f"/opendata/evses/{uid}/price", params={"connector": 1, "lang": "en"})).json()
    assert one["tariff"]["code"] == "PLUG1" and one["connectors"][0]["tariff"] is None
    assert one["text"]["en"].startswith("Charging costs €0.484 per kWh")
    missing = await api.get(f"/opendata/evses/{uid}/price", params={"connector": 2})
    assert missing.status_code == 404 and "no connector 2" in missing.json()["detail"]
    for bad in ("0", "100", "x"):
        assert (await api.get(f"/opendata/evses/{uid}/price", params={"connector": bad})).status_code == 422
