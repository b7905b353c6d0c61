"""OCPI 2.2.1 Locations (CPO, sender): what a registered partner reads at /ocpi/2.2.1/locations.

The partner is added with `add_registered_partner` and calls us over loopback with
`Authorization: Token base64(token)`. Every object is checked against the structure of the
official examples (same keys, same JSON types for what we fill) and for the fields the Dutch
national access point makes mandatory.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from ocpp.v16 import call
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.app import Stekker
from stekker.db.models import Evse, Location
from stekker.db.models_tariffs import TariffRecord, TariffVersion
from stekker.domain.tariff_scope import Customer
from stekker.ocpi.location_objects import (
    coordinate,
    customers_of,
    evse_status,
    evse_uid,
    max_power,
    opening_times,
    parties_of,
)
from stekker.services.ocpi_partners import add_registered_partner, issue_registration
from tests.observe import eventually
from tests.peers import ocpp_station

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "ocpi" / "2.2.1"
BASE = "/ocpi/2.2.1/locations"
NAP_LOCATION = ("opening_times", "energy_mix")
NAP_EVSE = ("parking_restrictions",)
NAP_CONNECTOR = ("max_electric_power", "tariff_ids")
LOCATION_REQUIRED = (
    "country_code", "party_id", "id", "publish", "address", "city", "country", "coordinates",
    "time_zone", "last_updated",
)  # fmt: skip
EVSE_REQUIRED = ("uid", "status", "connectors", "last_updated")
CONNECTOR_REQUIRED = ("id", "standard", "format", "power_type", "max_voltage", "max_amperage", "last_updated")
#: Spec fields we fill that no official example shows.
NOT_IN_EXAMPLES = {"max_electric_power": int}


# --- mounting (until the lead's stekker.ocpi.app includes these routers) ------------------------


# --- the structural comparer --------------------------------------------------------------------


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return "null"


def shape_problems(
    ours: Any, examples: list[Any], path: str = "$", extra: dict[str, type] = NOT_IN_EXAMPLES
) -> list[str]:
    """Where `ours` differs in structure from every example: a key no example has (unless it is
    a spec field in `extra`, of that type), or a JSON type no example uses at that place. Lists
    compare each of our items with every example item."""
    kinds = {_kind(e) for e in examples}
    if _kind(ours) not in kinds:
        return [f"{path}: {_kind(ours)}, the examples have {sorted(kinds)}"]
    if isinstance(ours, dict):
        problems: list[str] = []
        for key, value in ours.items():
            alike = [e[key] for e in examples if isinstance(e, dict) and key in e]
            if not alike:
                if key in extra and isinstance(value, extra[key]):
                    continue
                problems.append(f"{path}.{key}: no example has it")
                continue
            problems += shape_problems(value, alike, f"{path}.{key}", extra)
        return problems
    if isinstance(ours, list):
        items = [item for e in examples if isinstance(e, list) for item in e]
        if not items:
            return []
        return [p for i, item in enumerate(ours) for p in shape_problems(item, items, f"{path}[{i}]", extra)]
    return []


def location_examples() -> list[Any]:
    full = [fixture(p.name) for p in sorted(FIXTURES.glob("location_*.json"))]
    examples = [e for e in full if isinstance(e, dict) and "evses" in e]
    examples += [e for e in full if isinstance(e, dict) and set(e) <= {"energy_mix", "opening_times"}]
    examples += [{"opening_times": e} for e in full if isinstance(e, dict) and "twentyfourseven" in e]
    return examples


def assert_location_conforms(location: dict[str, Any]) -> None:
    problems = shape_problems(location, location_examples())
    assert not problems, problems
    for key in LOCATION_REQUIRED + NAP_LOCATION:
        assert key in location, key
    for evse in location["evses"]:
        assert_evse_conforms(evse)


def assert_evse_conforms(evse: dict[str, Any]) -> None:
    for key in EVSE_REQUIRED + NAP_EVSE:
        assert key in evse, key
    assert evse["connectors"], "OCPI: an EVSE has at least one connector"
    for connector in evse["connectors"]:
        for key in CONNECTOR_REQUIRED + NAP_CONNECTOR:
            assert key in connector, key
        assert isinstance(connector["max_electric_power"], int) and connector["max_electric_power"] > 0


def test_the_comparer_can_fail() -> None:
    example = fixture("location_example.json")
    assert shape_problems(example, location_examples()) == []
    assert shape_problems({**example, "publish": "yes"}, [example]) == [
        "$.publish: string, the examples have ['boolean']"
    ]
    bad_connector = {**example["evses"][0]["connectors"][0], "max_voltage": "220", "colour": "red"}
    problems = shape_problems(
        {**example, "evses": [{**example["evses"][0], "connectors": [bad_connector]}]}, [example]
    )
    assert problems == [
        "$.evses[0].connectors[0].max_voltage: string, the examples have ['number']",
        "$.evses[0].connectors[0].colour: no example has it",
    ]


# --- pure pieces ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ocpp", "ocpi"),
    [
        ("Available", "AVAILABLE"),
        ("Preparing", "CHARGING"),
        ("Charging", "CHARGING"),
        ("SuspendedEV", "CHARGING"),
        ("SuspendedEVSE", "CHARGING"),
        ("Finishing", "CHARGING"),
        ("Occupied", "CHARGING"),
        ("Reserved", "RESERVED"),
        ("Unavailable", "INOPERATIVE"),
        ("Faulted", "OUTOFORDER"),
        (None, "UNKNOWN"),
        ("Nonsense", "UNKNOWN"),
    ],
)
def test_ocpp_status_to_ocpi(ocpp: str | None, ocpi: str) -> None:
    assert evse_status([ocpp], online=True, retired=False) == ocpi


def test_evse_status_over_connectors_and_station() -> None:
    assert evse_status(["Faulted", "Available"], online=True, retired=False) == "AVAILABLE"
    assert evse_status(["Available", "Charging"], online=True, retired=False) == "CHARGING"
    assert evse_status(["Unavailable", "Faulted"], online=True, retired=False) == "OUTOFORDER"
    assert evse_status([], online=True, retired=False) == "UNKNOWN"
    assert evse_status(["Charging"], online=False, retired=False) == "UNKNOWN"
    assert evse_status(["Charging"], online=True, retired=True) == "REMOVED"
    assert evse_status(["Charging"], online=False, retired=True) == "REMOVED"
    assert evse_status(["Available"], online=True, retired=False, station_status="Faulted") == "OUTOFORDER"
    assert (
        evse_status(["Available"], online=True, retired=False, station_status="Unavailable") == "INOPERATIVE"
    )
    assert evse_status(["Available"], online=True, retired=False, station_status="Available") == "AVAILABLE"


def test_max_power_is_always_known() -> None:
    assert max_power("AC_3_PHASE", 230, 16, None) == 11040
    assert max_power("AC_1_PHASE", 230, 16, None) == 3680
    assert max_power("DC", 920, 400, None) == 368000
    assert max_power("DC", 920, 400, 150000) == 150000
    assert max_power("AC_3_PHASE", 230, 32, 0) == 22080  # 0 is not a limit anyone means


def test_small_converters() -> None:
    assert coordinate(Decimal("52.1")) == "52.100000"
    assert coordinate(Decimal("-4.123456")) == "-4.123456"
    assert opening_times(None) == {"twentyfourseven": True}
    hours = {
        "twentyfourseven": True,
        "exceptional_closings": [
            {"period_begin": "2026-12-25T04:00:00+01:00", "period_end": "2026-12-25T06:00:00Z"}
        ],
    }
    assert opening_times(hours)["exceptional_closings"] == [
        {"period_begin": "2026-12-25T03:00:00Z", "period_end": "2026-12-25T06:00:00Z"}
    ]
    assert evse_uid("ST1", 2, None) == "ST1*2" and evse_uid("ST1", 2, "NL*STK*E1*2") == "NL*STK*E1*2"
    assert parties_of("nl", "abc", [("NL", "ABC", "EMSP"), ("DE", "XYZ", "EMSP"), ("", "", "OTHER")]) == [
        "NL-ABC",
        "DE-XYZ",
    ]
    assert customers_of(["NL-ABC", "NL-ABC"]) == (Customer(None), Customer("NL-ABC"))


# --- over loopback ------------------------------------------------------------------------------


def auth(token: str) -> dict[str, str]:
    return {"Authorization": "Token " + base64.b64encode(token.encode()).decode()}


async def partner(
    server: Stekker, token: str = "emsp-abc-token", *, role: str = "EMSP", party: str = "ABC"
) -> dict[str, str]:
    await add_registered_partner(
        server.ctx, name=f"partner {party}", country_code="NL", party_id=party, role=role, token=token
    )
    return auth(token)


async def add_location(api: httpx.AsyncClient, name: str, **extra: Any) -> int:
    body = {"name": name, "address": "Stationsplein 1", "city": "Utrecht", "postal_code": "3511 CE",
            "latitude": "52.089444", "longitude": "5.110278", **extra}  # fmt: skip
    response = await api.post("/api/locations", json=body)
    assert response.status_code == 201, response.text
    location_id: int = response.json()["id"]
    return location_id


async def add_station(
    api: httpx.AsyncClient, station_id: str, location_id: int, evses: list[dict[str, Any]]
) -> None:
    response = await api.post(
        "/api/stations", json={"authentication": "none", "id": station_id, "location_id": location_id}
    )
    assert response.status_code == 201, response.text
    for evse in evses:
        response = await api.post(f"/api/stations/{station_id}/evses", json=evse)
        assert response.status_code == 201, response.text


async def add_tariff(
    server: Stekker, code: str, *, audience: str = "all", parties: list[str] | None = None,
    applies_to: list[dict[str, Any]] | None = None, content: dict[str, Any] | None = None,
    effective_from: datetime | None = None, ends: bool = False,
) -> None:  # fmt: skip
    """An approved tariff version straight in the database, as the approval workflow leaves it."""
    body = content or fixture("tariff_8_simple_025kwh.json")
    body = {
        k: v
        for k, v in body.items()
        if k not in ("id", "currency", "country_code", "party_id", "last_updated")
    }

    async def job(db: AsyncSession) -> None:
        record = TariffRecord(code=code, name=code, currency="EUR", created_by="test")
        db.add(record)
        await db.flush()
        db.add(
            TariffVersion(
                tariff_id=record.id, version=1, status="active", content=body,
                applies_to=applies_to or [{"all": True}], audience=audience, parties=parties or [],
                energy_suppliers=[], effective_from=effective_from or server.ctx.now() - timedelta(days=1),
                ends_tariff=ends, created_by="test",
            )
        )  # fmt: skip

    await server.ctx.write(job)


TWO_EVSES = [
    {"evse_number": 1, "evse_id": "NL*STK*E0001*1", "connectors": [{"connector_number": 1}]},
    {
        "evse_number": 2,
        "evse_id": "NL*STK*E0001*2",
        "connectors": [
            {"connector_number": 1, "standard": "IEC_62196_T2_COMBO", "format": "CABLE", "power_type": "DC",
             "max_voltage": 920, "max_amperage": 200, "max_electric_power": 150000},
            {"connector_number": 2, "standard": "CHADEMO", "format": "CABLE", "power_type": "DC",
             "max_voltage": 500, "max_amperage": 125},
        ],
    },
]  # fmt: skip


async def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status_code"] == 1000, body
    assert body["timestamp"].endswith("Z")
    return body["data"]


async def refused(response: httpx.Response, http: int, code: int) -> str:
    assert response.status_code == http, response.text
    body = response.json()
    assert body["status_code"] == code, body
    assert "data" not in body or body["data"] is None
    message: str = body["status_message"]
    return message


async def test_a_partner_reads_our_locations(api: httpx.AsyncClient, server: Stekker, ocpp_url: str) -> None:
    headers = await partner(server)
    hours = {
        "twentyfourseven": False,
        "regular_hours": [{"weekday": 1, "period_begin": "07:00", "period_end": "22:00"}],
    }
    garage = await add_location(api, "Garage Centrum", opening_times=hours, address="A" * 60)
    street = await add_location(api, "Oudegracht")
    await add_location(api, "Nothing here yet")  # no EVSE: not in the list
    await add_station(api, "OCPI-L1", garage, TWO_EVSES)
    await add_station(api, "OCPI-L2", street, [{"evse_number": 1, "connectors": [{"connector_number": 1}]}])
    green = {**fixture("tariff_8_simple_025kwh.json"), "energy_mix": {"is_green_energy": True}}
    await add_tariff(server, "ADHOC", audience="adhoc", content=green)
    await add_tariff(server, "ABC-DEAL", audience="contract", parties=["NL-ABC"])
    await add_tariff(server, "XYZ-DEAL", audience="contract", parties=["NL-XYZ"])
    await add_tariff(server, "DC-FAST", applies_to=[{"evse_uid": "NL*STK*E0001*2", "connector": 1}])

    async with ocpp_station(ocpp_url, "OCPI-L1") as cp:
        await cp.call(call.StatusNotification(connector_id=1, error_code="NoError", status="Charging"))
        await cp.call(call.StatusNotification(connector_id=2, error_code="NoError", status="Available"))
        response = await api.get(BASE, headers=headers)
        data = await ok(response)
        assert response.headers["X-Total-Count"] == "2" and response.headers["X-Limit"] == "100"
        assert "Link" not in response.headers
        assert [loc["id"] for loc in data] == [str(garage), str(street)]
        for location in data:
            assert_location_conforms(location)
        first = data[0]
        assert first["country_code"] == "NL" and first["party_id"] == "STK" and first["publish"] is True
        assert first["operator"] == {"name": "Stekker"}
        assert first["address"] == "A" * 45  # OCPI's limit
        assert first["coordinates"] == {"latitude": "52.089444", "longitude": "5.110278"}
        assert first["opening_times"] == hours
        assert first["energy_mix"] == {"is_green_energy": True}  # from the ad-hoc tariff there
        assert data[1]["opening_times"] == {"twentyfourseven": True}
        evses = {e["uid"]: e for e in first["evses"]}
        assert set(evses) == {"NL*STK*E0001*1", "NL*STK*E0001*2"}
        assert evses["NL*STK*E0001*1"]["status"] == "CHARGING"
        assert evses["NL*STK*E0001*2"]["status"] == "AVAILABLE"
        assert evses["NL*STK*E0001*1"]["parking_restrictions"] == []
        assert evses["NL*STK*E0001*1"]["capabilities"] == ["RFID_READER", "REMOTE_START_STOP_CAPABLE"]
        ac = evses["NL*STK*E0001*1"]["connectors"][0]
        assert ac["max_electric_power"] == 230 * 32 * 3
        assert ac["tariff_ids"] == ["ADHOC", "ABC-DEAL"]  # not the deal of another eMSP
        dc1, dc2 = evses["NL*STK*E0001*2"]["connectors"]
        assert dc1["max_electric_power"] == 150000 and dc2["max_electric_power"] == 500 * 125
        assert dc1["tariff_ids"] == ["DC-FAST"] and dc2["tariff_ids"] == ["ADHOC", "ABC-DEAL"]
        for stamp in (first["last_updated"], ac["last_updated"], evses["NL*STK*E0001*1"]["last_updated"]):
            assert datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")
        assert first["last_updated"] >= evses["NL*STK*E0001*1"]["last_updated"] >= ac["last_updated"]
        street_uid = data[1]["evses"][0]["uid"]
        assert street_uid == data[1]["evses"][0]["evse_id"]  # the generated eMI3 id
        assert data[1]["evses"][0]["status"] == "UNKNOWN"  # never connected

        # one object at a time
        one = await ok(await api.get(f"{BASE}/{garage}", headers=headers))
        assert one == first
        evse = await ok(await api.get(f"{BASE}/{garage}/NL*STK*E0001*2", headers=headers))
        assert evse == evses["NL*STK*E0001*2"]
        assert await ok(await api.get(f"{BASE}/{garage}/nl*stk*e0001*2", headers=headers)) == evse
        connector = await ok(await api.get(f"{BASE}/{garage}/NL*STK*E0001*2/2", headers=headers))
        assert connector == dc2
        assert await ok(await api.get(f"{BASE}/{street}/{street_uid}/1", headers=headers))

    # the station goes away: its EVSEs are UNKNOWN (offline), not what they last said
    async def offline() -> bool:
        evse = await ok(await api.get(f"{BASE}/{garage}/NL*STK*E0001*1", headers=headers))
        return bool(evse["status"] == "UNKNOWN")

    await eventually(offline)

    # another eMSP sees its own deal, not ABC's
    other = await partner(server, "emsp-xyz-token", party="XYZ")
    connector = await ok(await api.get(f"{BASE}/{garage}/NL*STK*E0001*1/1", headers=other))
    assert connector["tariff_ids"] == ["ADHOC", "XYZ-DEAL"]


async def test_a_retired_station_shows_its_evses_removed(api: httpx.AsyncClient, server: Stekker) -> None:
    headers = await partner(server)
    location = await add_location(api, "Retiring")
    await add_station(api, "OCPI-R1", location, [{"evse_number": 1, "connectors": [{"connector_number": 1}]}])
    before = await ok(await api.get(f"{BASE}/{location}", headers=headers))
    assert before["evses"][0]["status"] == "UNKNOWN"
    assert (await api.post("/api/stations/OCPI-R1/retire")).status_code == 200
    data = await ok(await api.get(BASE, headers=headers))
    assert [loc["evses"][0]["status"] for loc in data] == ["REMOVED"]
    assert data[0]["evses"][0]["connectors"][0]["tariff_ids"] == []  # no tariff at all: nothing prices it
    assert data[0]["energy_mix"] == {"is_green_energy": False}
    assert data[0]["last_updated"] >= before["last_updated"]


async def test_every_kind_of_partner_reads_and_strangers_do_not(
    api: httpx.AsyncClient, server: Stekker
) -> None:
    location = await add_location(api, "Public")
    await add_station(api, "OCPI-P1", location, [{"evse_number": 1}])
    for role, party in (("HUB", "HUB"), ("NAP", "NDW"), ("OTHER", "OTH"), ("CPO", "CPX")):
        headers = await partner(server, f"token-{role}", role=role, party=party)
        assert len(await ok(await api.get(BASE, headers=headers))) == 1
    raw = await api.get(
        BASE, headers={"Authorization": "Token token-HUB"}
    )  # sent unencoded: still its secret
    assert raw.status_code == 200

    _, pending_token = await issue_registration(server.ctx, actor="test", name="not yet", parties=["NL/NOT"])
    for headers in ({}, auth("no such token"), {"Authorization": "Bearer x"}, auth(pending_token),
                    {"Authorization": "Token " + "A" * 5000}):  # fmt: skip
        for url in (BASE, f"{BASE}/{location}", f"{BASE}/{location}/NL*STK*X/1"):
            await refused(await api.get(url, headers=headers), 401, 2000)


async def test_unknown_and_hostile_ids(api: httpx.AsyncClient, server: Stekker) -> None:
    headers = await partner(server)
    location = await add_location(api, "Known")
    await add_station(api, "OCPI-H1", location, [{"evse_number": 1, "evse_id": "NL*STK*E0009*1"}])
    for url in (
        f"{BASE}/{location + 1000}",
        f"{BASE}/0",
        f"{BASE}/-1",
        f"{BASE}/abc",
        f"{BASE}/99999999999",
        f"{BASE}/1e3",
        f"{BASE}/%00",
        f"{BASE}/{location}/NL*STK*E0009*2",
        f"{BASE}/{location}/NL*STK*E0009*1/2",
        f"{BASE}/{location}/NL*STK*E0009*1/01",
        f"{BASE}/{location}/NL*STK*E0009*1/x",
        f"{BASE}/{location}/%27%20OR%201=1--",
    ):
        message = await refused(await api.get(url, headers=headers), 404, 2003)
        assert "unknown" in message
    too_long = await api.get(f"{BASE}/{'9' * 37}", headers=headers)
    await refused(too_long, 200, 2001)
    await refused(await api.get(f"{BASE}/{location}/{'E' * 40}", headers=headers), 200, 2001)


async def test_pagination_edges(api: httpx.AsyncClient, server: Stekker) -> None:
    headers = await partner(server)
    ids = []
    for n in range(5):
        ids.append(str(await add_location(api, f"Page {n}")))
        await add_station(api, f"OCPI-PG{n}", int(ids[-1]), [{"evse_number": 1}])

    response = await api.get(BASE, params={"limit": 2}, headers=headers)
    seen = [loc["id"] for loc in await ok(response)]
    assert response.headers["X-Total-Count"] == "5" and response.headers["X-Limit"] == "2"
    while "Link" in response.headers:
        link = response.headers["Link"]
        assert link.endswith('>; rel="next"')
        response = await api.get(link[1 : link.index(">")], headers=headers)
        seen += [loc["id"] for loc in await ok(response)]
    assert seen == ids

    beyond = await api.get(BASE, params={"offset": 10}, headers=headers)
    assert await ok(beyond) == [] and beyond.headers["X-Total-Count"] == "5" and "Link" not in beyond.headers
    last = await api.get(BASE, params={"offset": 4, "limit": 2}, headers=headers)
    assert [loc["id"] for loc in await ok(last)] == ids[4:] and "Link" not in last.headers
    huge = await api.get(BASE, params={"limit": 1_000_000}, headers=headers)
    assert len(await ok(huge)) == 5 and huge.headers["X-Limit"] == "100"  # capped, and said so
    for params in ({"limit": 0}, {"limit": -1}, {"offset": -1}, {"limit": "ten"}, {"limit": 10**12},
                   {"offset": "1.5"}, {"date_from": "yesterday"}, {"date_to": "2026-13-01T00:00:00Z"},
                   {"date_from": "1700000000"}, {"date_to": "0.5"},
                   {"date_from": "2026-01-02T00:00:00Z", "date_to": "2026-01-01T00:00:00Z"}):  # fmt: skip
        await refused(await api.get(BASE, params=params, headers=headers), 200, 2001)


async def test_date_from_and_date_to_filter_on_last_updated(api: httpx.AsyncClient, server: Stekker) -> None:
    headers = await partner(server)
    old, new = await add_location(api, "Old"), await add_location(api, "New")
    await add_station(api, "OCPI-D1", old, [{"evse_number": 1}])
    await add_station(api, "OCPI-D2", new, [{"evse_number": 1}])
    t_old = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
    t_new = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)

    async def backdate(db: AsyncSession) -> None:
        for location_id, station, at in ((old, "OCPI-D1", t_old), (new, "OCPI-D2", t_new)):
            await db.execute(
                update(Location).where(Location.id == location_id).values(created_at=at, updated_at=at)
            )
            await db.execute(update(Evse).where(Evse.station_id == station).values(created_at=at))

    await server.ctx.write(backdate)

    async def ids(**params: str) -> list[str]:
        return [loc["id"] for loc in await ok(await api.get(BASE, params=params, headers=headers))]

    assert await ids() == [str(old), str(new)]
    data = await ok(await api.get(BASE, headers=headers))
    assert [loc["last_updated"] for loc in data] == ["2025-03-01T12:00:00Z", "2025-06-01T12:00:00Z"]
    assert await ids(date_from="2025-03-01T12:00:00Z") == [str(old), str(new)]  # inclusive
    assert await ids(date_from="2025-03-01T12:00:01Z") == [str(new)]
    assert await ids(date_to="2025-06-01T12:00:00Z") == [str(old)]  # exclusive
    assert await ids(date_from="2025-04-01T00:00:00+02:00", date_to="2025-07-01T00:00:00Z") == [str(new)]
    assert await ids(date_from="2030-01-01T00:00:00Z") == []
    assert await ids(date_to="2025-03-01T12:00:00") == []  # no offset: UTC

    # a change to the location moves it forward
    assert (await api.patch(f"/api/locations/{old}", json={"name": "Old, renamed"})).status_code == 200
    assert await ids(date_from="2025-07-01T00:00:00Z") == [str(old)]
