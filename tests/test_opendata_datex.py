"""The DATEX II feeds as a national access point reads them: a fleet set up through the operator
API, stations reporting over OCPP, and both publications fetched over HTTP, validated against
the official AFIR-profile schemas, in JSON and XML, before and after a status change.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from lxml import etree

from stekker.app import Stekker
from stekker.opendata import datex2_xml
from tests.observe import eventually
from tests.peers import ocpp_station
from tests.test_datex2 import (
    STATUS_SCHEMA,
    TABLE_SCHEMA,
    _errors,
    _point_statuses,
    _rates,
    _refill_points,
    _walk,
)
from tests.test_ocpi_locations import TWO_EVSES, add_location, add_station, add_tariff, fixture
from tests.test_opendata_feeds import evse_of, status

PARKING = {
    "elements": [
        {"price_components": [{"type": "ENERGY", "price": 0.30, "vat": 21.0, "step_size": 1}]},
        {"price_components": [{"type": "PARKING_TIME", "price": 2.00, "vat": 21.0, "step_size": 60}],
         "restrictions": {"start_time": "08:00", "end_time": "20:00", "day_of_week": ["MONDAY", "TUESDAY"]}},
    ]
}  # fmt: skip


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"opendata_burst": 10_000, "opendata_requests_per_minute": 100_000}


async def fleet(api: httpx.AsyncClient, server: Stekker) -> None:
    """Three locations (one with opening hours), AC and DC, three tariffs."""
    days = [{"weekday": d, "period_begin": "07:00", "period_end": "23:00"} for d in range(1, 8)]
    hours = {"twentyfourseven": False, "regular_hours": days}
    garage = await add_location(api, "P+R <Westraven> & Co", opening_times=hours)
    street = await add_location(api, "Oudegracht 'ten Noorden'")
    south = await add_location(api, "Vrijthof", city="Maastricht", latitude="50.848", longitude="5.688")
    await add_station(api, "DX-1", garage, TWO_EVSES)
    one_connector = [{"connector_number": 1}]
    await add_station(api, "DX-2", street, [{"evse_number": n, "connectors": one_connector} for n in (1, 2)])
    await add_station(api, "DX-3", south, [{"evse_number": 1, "connectors": [{"connector_number": 1}]}])
    await add_tariff(server, "AC-STRAAT", audience="adhoc", content=PARKING)
    await add_tariff(server, "DC-SNEL", applies_to=[{"evse_uid": "NL*STK*E0001*2", "connector": 1}],
                     content=fixture("tariff_6_025kwh_start_max_price.json"))  # fmt: skip
    await add_tariff(server, "ABC-DEAL", audience="contract", parties=["NL-ABC"])


async def _get(api: httpx.AsyncClient, path: str) -> httpx.Response:
    response = await api.get(path)
    assert response.status_code == 200, response.text
    return response


async def test_both_publications_validate_and_follow_a_station(
    api: httpx.AsyncClient, server: Stekker, ocpp_url: str
) -> None:
    await fleet(api, server)
    async with ocpp_station(ocpp_url, "DX-2") as cp:
        await status(cp, 1, "Available")
        await status(cp, 2, "Charging")

        async def reported() -> dict[str, Any] | None:
            document: dict[str, Any] = (await _get(api, "/opendata/datex2/status.json")).json()
            points = _point_statuses(document)
            wanted = {f"NL-STK-evse-{evse_of('DX-2')}": "available", "NL-STK-evse-NL*STK*EDX2*2": "occupied"}
            seen = {k: points[k]["status"]["value"] for k in wanted if k in points}
            return document if seen == wanted else None

        status_doc = await eventually(reported)
        table_response = await _get(api, "/opendata/datex2/table.json")
        table = table_response.json()
        assert _errors(TABLE_SCHEMA, table) == []
        assert _errors(STATUS_SCHEMA, status_doc) == []

        points = _refill_points(table)
        assert len(points) == 2 + 2 + 1  # every EVSE of the three locations
        assert set(_point_statuses(status_doc)) == set(points)
        # the never-connected station's EVSEs are unknown, not available
        assert _point_statuses(status_doc)["NL-STK-evse-NL*STK*E0001*1"]["status"]["value"] == "unknown"
        rates = _rates(table)
        assert {r.rsplit("-rate-", 1)[1] for r in rates} == {"AC-STRAAT", "DC-SNEL"}  # no contract tariff
        body = table_response.text
        assert "P+R <Westraven> & Co" in str(table)
        assert "ABC-DEAL" not in body
        # the status publication names the table version it belongs to
        reference = next(d for d in _walk(status_doc) if "tableReference" in d)["tableReference"][0]
        table_body = table["payload"]["aegiEnergyInfrastructureTablePublication"]
        table_id = table_body["energyInfrastructureTable"][0]
        assert reference["idG"] == table_id["idG"] and reference["versionG"] == table_id["versionG"]

        # XML: well-formed, hostile names escaped, and the same content as the JSON
        table_xml = await _get(api, "/opendata/datex2/table.xml")
        assert table_xml.headers["content-type"].startswith("application/xml")
        root = etree.fromstring(table_xml.content)
        assert root.tag.endswith("payload")
        assert b"P+R &lt;Westraven&gt; &amp; Co" in table_xml.content
        assert datex2_xml.xml_to_json(table_xml.content) == table
        status_xml = await _get(api, "/opendata/datex2/status.xml")
        etree.fromstring(status_xml.content)
        assert (
            datex2_xml.xml_to_json(status_xml.content)
            == (await _get(api, "/opendata/datex2/status.json")).json()
        )

        # a status change moves the status publication; the static table keeps its ETag
        table_etag = table_response.headers["ETag"]
        await status(cp, 2, "Faulted")

        async def out_of_order() -> bool:
            points = _point_statuses((await _get(api, "/opendata/datex2/status.json")).json())
            return bool(points["NL-STK-evse-NL*STK*EDX2*2"]["status"]["value"] == "outOfOrder")

        await eventually(out_of_order)
        again = await api.get("/opendata/datex2/table.json", headers={"If-None-Match": table_etag})
        assert again.status_code == 304
