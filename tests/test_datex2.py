"""DATEX II v3 AFIR publications (issue 7): the JSON form validates against the official
schemas, the XML form says the same, status and table agree, and prices, statuses, ids and
versions are what a reader of the feed must get. Pure: no database, no server."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator, FormatChecker
from lxml import etree
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from stekker.opendata import datex2, datex2_xml
from stekker.opendata.model import OpenLocation, OpenTariff
from tests.datex2_fleet import (
    HOSTILE_CITY,
    HOSTILE_NAME,
    NOW,
    PUBLISHER,
    STATIC_AT,
    big_fleet,
    fleet,
    location,
    tariffs,
)

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
DATEX = FIXTURES / "datex2-afir"
TABLE_DIR = DATEX / "EnergyInfrastructureTablePublication"
STATUS_DIR = DATEX / "EnergyInfrastructureStatusPublication"
TABLE_VERSION = 1772352000
NS = {prefix: uri for prefix, uri in datex2_xml.NAMESPACES.items()}

# --- validation against the official schemas --------------------------------------------------

_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")
_TIME = re.compile(r"\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")
FORMATS = FormatChecker()


@FORMATS.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    """RFC 3339 date-time (jsonschema checks it only with an optional package installed)."""
    if not isinstance(value, str):
        return True
    if not _DATE_TIME.fullmatch(value):
        return False
    datetime.fromisoformat(value.replace("Z", "+00:00"))
    return True


@FORMATS.checks("time")
def _is_time(value: object) -> bool:
    return not isinstance(value, str) or bool(_TIME.fullmatch(value))


def _validator(folder: Path, root: str) -> Draft202012Validator:
    """The schema files reference each other by file name; a registry holds them all."""
    registry: Registry[Any] = Registry().with_resources(
        (path.name, Resource.from_contents(json.loads(path.read_text()), default_specification=DRAFT202012))
        for path in sorted(folder.glob("DATEXII_3_*.json"))
    )
    return Draft202012Validator({"$ref": root}, registry=registry, format_checker=FORMATS)


TABLE_SCHEMA = _validator(TABLE_DIR, "DATEXII_3_D2Payload.json")
STATUS_SCHEMA = _validator(STATUS_DIR, "DATEXII_3_MessageContainer.json")


def _errors(validator: Draft202012Validator, document: Any) -> list[str]:
    return [f"{e.json_path}: {e.message[:200]}" for e in validator.iter_errors(document)]


def _example(folder: Path, name: str) -> Any:
    return json.loads((folder / name).read_text())


# --- the fleet rendered -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def rendered() -> dict[str, Any]:
    locations, prices = fleet(), tariffs()
    sites = [datex2.site_table_record(loc, prices) for loc in locations]
    statuses = [datex2.site_status_record(loc, prices) for loc in locations]
    table = datex2.table_publication(sites, PUBLISHER, NOW, TABLE_VERSION)
    status = datex2.status_publication(statuses, PUBLISHER, NOW, TABLE_VERSION)
    return {"locations": locations, "sites": sites, "statuses": statuses, "table": table, "status": status}


def _walk(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        yield value
        for item in value.values():
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)


def _refill_points(table: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {d["aegiElectricChargingPoint"]["idG"]: d["aegiElectricChargingPoint"] for d in _walk(table)
            if "aegiElectricChargingPoint" in d}  # fmt: skip


def _point_statuses(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {d["aegiElectricChargingPointStatus"]["reference"]["idG"]: d["aegiElectricChargingPointStatus"]
            for d in _walk(status) if "aegiElectricChargingPointStatus" in d}  # fmt: skip


def _rates(table: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["idG"]: r for d in _walk(table) for r in d.get("energyRate", [])}


def _table_body(table: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = table["payload"]["aegiEnergyInfrastructureTablePublication"]
    return body


def _status_body(status: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = status["messageContainer"]["payload"][0][
        "aegiEnergyInfrastructureStatusPublication"
    ]
    return body


# --- the validator itself ---------------------------------------------------------------------


def test_the_official_examples_validate() -> None:
    assert _errors(TABLE_SCHEMA, _example(TABLE_DIR, "EnergyInfrastructureTablePublication_rev2.json")) == []
    assert (
        _errors(STATUS_SCHEMA, _example(STATUS_DIR, "EnergyInfrastructureStatusPublication_rev2.json")) == []
    )


def test_a_broken_document_fails_validation() -> None:
    table = _example(TABLE_DIR, "EnergyInfrastructureTablePublication_rev2.json")
    site = table["payload"]["aegiEnergyInfrastructureTablePublication"]["energyInfrastructureTable"][0][
        "energyInfrastructureSite"
    ][0]
    point = site["energyInfrastructureStation"][0]["refillPoint"][0]["aegiElectricChargingPoint"]
    del point["connector"][0]["maxPowerAtSocket"]  # required
    site["typeOfSite"] = {"value": "carPark"}  # not in the enumeration
    site["lastUpdated"] = "yesterday"  # not a date-time
    errors = _errors(TABLE_SCHEMA, table)
    assert any("maxPowerAtSocket" in e for e in errors)
    assert any("carPark" in e for e in errors)
    assert any("yesterday" in e for e in errors)

    status = _example(STATUS_DIR, "EnergyInfrastructureStatusPublication_rev2.json")
    body = status["messageContainer"]["payload"][0]["aegiEnergyInfrastructureStatusPublication"]
    point_status = body["energyInfrastructureSiteStatus"][0]["energyInfrastructureStationStatus"][0][
        "refillPointStatus"
    ][0]["aegiElectricChargingPointStatus"]
    point_status["status"] = "charging"  # an enumeration is wrapped: {"value": ...}
    assert any("'charging' is not of type 'object'" in e for e in _errors(STATUS_SCHEMA, status))


# --- JSON form --------------------------------------------------------------------------------


def test_our_table_publication_validates(rendered: dict[str, Any]) -> None:
    assert _errors(TABLE_SCHEMA, rendered["table"]) == []


def test_our_status_publication_validates(rendered: dict[str, Any]) -> None:
    assert _errors(STATUS_SCHEMA, rendered["status"]) == []


def test_every_official_ocpi_tariff_example_becomes_a_valid_energy_rate() -> None:
    examples = {}
    for path in sorted((FIXTURES / "ocpi" / "2.2.1").glob("tariff_[0-9]*.json")):
        tariff = json.loads(path.read_text())
        tariff["id"] = path.stem  # several examples share an id
        examples[path.stem] = OpenTariff(tariff)
    assert len(examples) == 18
    ocpi_location = json.loads((FIXTURES / "ocpi" / "2.2.1" / "location_example.json").read_text())
    for evse in ocpi_location["evses"]:
        for connector in evse["connectors"]:
            connector["tariff_ids"] = list(examples)  # also: no max_electric_power in these examples
    open_location = OpenLocation(ocpi_location, {}, STATIC_AT)
    site = datex2.site_table_record(open_location, examples)
    assert _errors(TABLE_SCHEMA, datex2.table_publication([site], PUBLISHER, NOW, 1)) == []
    assert len(_rates({"s": site})) == len(examples)
    site_status = datex2.site_status_record(open_location, examples)
    assert _errors(STATUS_SCHEMA, datex2.status_publication([site_status], PUBLISHER, NOW, 1)) == []
    table_xml = datex2_xml.table_xml(datex2.table_publication([site], PUBLISHER, NOW, 1))
    assert datex2_xml.xml_to_json(table_xml) == datex2.table_publication([site], PUBLISHER, NOW, 1)


def test_publication_header_names_the_creator_language_and_profile(rendered: dict[str, Any]) -> None:
    payload = rendered["table"]["payload"]
    assert payload["profileNameG"] == "AFIR Energy Infrastructure"
    assert payload["profileVersionG"] == "01-00-00"
    body = _table_body(rendered["table"])
    assert body["lang"] == "nl"
    assert body["publicationTime"] == "2026-03-02T11:30:15Z"
    assert body["publicationCreator"] == {"country": "NL", "nationalIdentifier": "NL-STK"}
    table = body["energyInfrastructureTable"][0]
    assert (table["idG"], table["versionG"]) == ("NL-STK-table", str(TABLE_VERSION))
    assert _status_body(rendered["status"])["tableReference"] == [
        {"targetClass": "EnergyInfrastructureTable", "idG": "NL-STK-table", "versionG": str(TABLE_VERSION)}
    ]


def test_status_and_table_agree(rendered: dict[str, Any]) -> None:
    """Every reference of the status publication points at an id and version in the table,
    every refill point of the table has a status, every rate reference a defined rate."""
    table, status = rendered["table"], rendered["status"]
    facilities = {d["idG"]: d["versionG"] for d in _walk(table) if "idG" in d and "versionG" in d}
    rates = _rates(table)
    references = [d["reference"] for d in _walk(status) if "reference" in d]
    assert len(references) == 4 + 6 + 10  # sites, stations, refill points
    for reference in references:
        assert reference["targetClass"] == "FacilityObject"
        assert facilities[reference["idG"]] == reference["versionG"], reference
    assert set(_point_statuses(status)) == set(_refill_points(table))
    rate_references = [d["energyRateReference"] for d in _walk(status) if "energyRateReference" in d]
    assert rate_references and all(r["idG"] in rates for r in rate_references)
    by_reference = [r for d in _walk(table) for r in d.get("energyRateByReference", [])]
    assert by_reference and all(r["idG"] in rates for r in by_reference)
    # a rate update repeats the prices of the rate it names
    for point in _point_statuses(status).values():
        for update in point.get("energyRateUpdate", []):
            rate = rates[update["energyRateReference"]["idG"]]
            assert update["energyPrice"] == rate["energyPrice"]
            assert update["lastUpdated"] == rate["lastUpdated"]


def test_ids_are_unique_and_derived_from_ours(rendered: dict[str, Any]) -> None:
    table = rendered["table"]
    ids = [d["idG"] for d in _walk(table) if "idG" in d and "targetClass" not in d]
    assert len(ids) == len(set(ids))
    site = rendered["sites"][0]
    assert site["idG"] == "NL-STK-site-1"
    assert [s["idG"] for s in site["energyInfrastructureStation"]] == [
        "NL-STK-station-UTR-001",
        "NL-STK-station-UTR-002",
    ]
    points = _refill_points(table)
    assert "NL-STK-evse-NL*STK*E10001*1" in points
    assert "NL-STK-evse-CP-3*1" in points  # no eMI3 id: the uid
    assert set(_rates(table)) == {
        "NL-STK-site-1-rate-AC-DAG",
        "NL-STK-site-2-rate-DC-SNEL",
        "NL-STK-site-3-rate-PARKEREN",
        "NL-STK-site-3-rate-GRATIS",
        "NL-STK-site-4-rate-AC-DAG",
    }
    # an EVSE whose station the cache does not know still sits in a station of its own
    assert (
        rendered["sites"][3]["energyInfrastructureStation"][0]["idG"]
        == "NL-STK-site-4-evse-NL*STK*E40001*1-station"
    )
    # rendering again gives the same ids and everything else
    again = datex2.site_table_record(rendered["locations"][0], tariffs())
    assert again == site


def test_evse_id_is_the_external_identifier(rendered: dict[str, Any]) -> None:
    points = _refill_points(rendered["table"])
    assert points["NL-STK-evse-NL*STK*E20001*1"]["externalIdentifier"] == [
        {
            "identifier": "NL*STK*E20001*1",
            "typeOfIdentifier": {"value": "extendedG", "extendedValueG": "evseId"},
        }
    ]
    assert "externalIdentifier" not in points["NL-STK-evse-CP-3*1"]


def test_statuses_map_faithfully(rendered: dict[str, Any]) -> None:
    expected = {
        "NL*STK*E10001*1": "available",
        "NL*STK*E10001*2": "occupied",
        "NL*STK*E10002*1": "reserved",
        "NL*STK*E10002*2": "blocked",
        "NL*STK*E20001*1": "outOfOrder",
        "NL*STK*E20001*2": "occupied",
        "NL*STK*E20002*1": "inoperative",
        "CP-3*1": "unknown",
        "NL*STK*E30003*2": "removed",
        "NL*STK*E40001*1": "available",
    }
    statuses = _point_statuses(rendered["status"])
    assert {k.removeprefix("NL-STK-evse-"): v["status"]["value"] for k, v in statuses.items()} == expected
    schema = json.loads((STATUS_DIR / "DATEXII_3_AfirEnergyInfrastructure.json").read_text())
    allowed = set(schema["definitions"]["RefillPointStatusEnum"]["enum"])
    assert set(datex2.STATUS.values()) <= allowed
    # a station is available unless none of its EVSEs works; unknown when that is not known
    stations = {
        s["reference"]["idG"]: s.get("isAvailable")
        for d in _walk(rendered["status"])
        for s in d.get("energyInfrastructureStationStatus", [])
    }
    assert stations["NL-STK-station-UTR-002"] is True  # reserved and blocked: it works
    assert stations["NL-STK-station-A2-HPC-2"] is False  # inoperative
    assert stations["NL-STK-station-CP-3"] is None  # unknown and removed


def test_connectors_and_charging_modes(rendered: dict[str, Any]) -> None:
    points = _refill_points(rendered["table"])
    dc = points["NL-STK-evse-NL*STK*E20001*1"]
    assert dc["currentType"] == {"value": "dc"}
    assert dc["chargingMode"] == {"value": "mode4DC"}
    assert dc["availableChargingPower"] == [150_000, 50_000]  # the maximum first
    assert dc["connector"] == [
        {
            "connectorType": {"value": "iec62196T2COMBO"},
            "connectorFormat": {"value": "otherCable"},
            "maxPowerAtSocket": 150_000,
            "voltage": 920,
            "maximumCurrent": 200,
        },
        {
            "connectorType": {"value": "chademo"},
            "connectorFormat": {"value": "otherCable"},
            "maxPowerAtSocket": 50_000,
            "voltage": 500,
            "maximumCurrent": 125,
        },
    ]
    ac = points["NL-STK-evse-NL*STK*E10001*1"]
    assert (ac["currentType"], ac["chargingMode"]) == ({"value": "ac"}, {"value": "mode3AC3p"})
    assert ac["connector"][0]["maxPowerAtSocket"] == 11_040
    household = points["NL-STK-evse-CP-3*1"]
    assert household["connector"][0]["connectorType"] == {"value": "domesticF"}
    assert household["chargingMode"] == {"value": "extendedG", "extendedValueG": "mode3AC1p"}  # the T2 leads
    station = rendered["sites"][1]["energyInfrastructureStation"][0]
    assert station["totalMaximumPower"] == 300_000
    assert station["authenticationAndIdentificationMethods"] == [{"value": "apps"}, {"value": "rfid"}]


def _prices(rendered: dict[str, Any], rate_id: str) -> list[dict[str, Any]]:
    prices: list[dict[str, Any]] = _rates(rendered["table"])[rate_id]["energyPrice"]
    return prices


def test_energy_and_parking_prices_with_off_peak_hours(rendered: dict[str, Any]) -> None:
    rate = _rates(rendered["table"])["NL-STK-site-1-rate-AC-DAG"]
    assert rate["ratePolicy"] == {"value": "adHoc"}
    assert rate["applicableCurrency"] == ["EUR"]
    assert rate["combinationWithParkingFee"] is True
    assert {v["lang"] for v in rate["additionalInformation"]["values"]} == {"nl", "en"}
    night, day, parking = rate["energyPrice"]
    night_hours = [{"startTimeOfPeriod": "22:00:00Z", "endTimeOfPeriod": "07:00:00Z"}]
    assert night["priceType"] == {"value": "pricePerKWh"}
    assert (night["value"], night["taxIncluded"], night["taxRate"]) == (0.25, False, 21)
    assert night["overallPeriod"]["validPeriod"] == [{"recurringTimePeriodOfDay": night_hours}]
    # OCPI: the first matching element wins; DATEX: every price applies, so the day price
    # excludes the night
    assert day["value"] == 0.35
    assert day["overallPeriod"]["exceptionPeriod"] == [{"recurringTimePeriodOfDay": night_hours}]
    assert parking["priceType"] == {"value": "extendedG", "extendedValueG": "pricePerMinuteParking"}
    assert parking["value"] == 0.020167  # 1.21 per hour
    assert "overallPeriod" not in parking  # no earlier parking price to give way to


def test_session_fee_time_price_and_price_cap(rendered: dict[str, Any]) -> None:
    rate = _rates(rendered["table"])["NL-STK-site-2-rate-DC-SNEL"]
    fee, energy, time_price = rate["energyPrice"]
    assert fee == {"priceType": {"value": "basePrice"}, "value": 0.5, "taxIncluded": False, "taxRate": 21}
    assert energy["priceType"] == {"value": "pricePerKWh"} and energy["value"] == 0.59
    assert time_price["priceType"] == {"value": "pricePerMinute"}
    assert time_price["value"] == 0.1  # 6.00 per hour
    assert time_price["timeBasedApplicability"] == {"fromMinute": 45}
    assert rate["maximumDeliveryFee"] == 60
    assert rate["lastUpdated"] == "2026-02-27T08:00:00Z"


def test_weekday_parking_minimum_price_free_and_unknown_tariffs(rendered: dict[str, Any]) -> None:
    rates = _rates(rendered["table"])
    parking_rate = rates["NL-STK-site-3-rate-PARKEREN"]
    assert parking_rate["minimumDeliveryFee"] == 1
    assert parking_rate["overallPeriod"] == {
        "overallStartTime": "2026-01-30T08:00:00Z",
        "overallEndTime": "2026-04-30T08:00:00Z",
    }
    _energy, parking = parking_rate["energyPrice"]
    assert parking["value"] == 0.04
    valid = parking["overallPeriod"]["validPeriod"][0]
    assert valid["recurringTimePeriodOfDay"] == [
        {"startTimeOfPeriod": "09:00:00Z", "endTimeOfPeriod": "18:00:00Z"}
    ]
    days = valid["recurringDayWeekMonthPeriod"][0]["comDayWeekMonth"]["applicableDay"]
    assert [d["value"] for d in days] == ["monday", "tuesday", "wednesday", "thursday", "friday"]
    assert parking["additionalInformation"] == {
        "values": [{"lang": "en", "value": "Applies only when: power < 11 kW"}]
    }
    assert rates["NL-STK-site-3-rate-GRATIS"]["energyPrice"] == [{"priceType": {"value": "free"}, "value": 0}]
    # the second EVSE naming PARKEREN refers to the rate the first defined; an unknown tariff
    # id ("ONBEKEND") is left out rather than invented
    lone = _refill_points(rendered["table"])["NL-STK-evse-NL*STK*E40001*1"]
    assert [r["idG"] for r in lone["electricEnergy"][0]["energyRate"]] == ["NL-STK-site-4-rate-AC-DAG"]
    removed = _refill_points(rendered["table"])["NL-STK-evse-NL*STK*E30003*2"]
    assert "energyRate" not in str(removed)  # no tariff names it


def test_rates_are_defined_once_per_site_and_referenced_after(rendered: dict[str, Any]) -> None:
    site = rendered["sites"][0]
    energies = [
        p["aegiElectricChargingPoint"]["electricEnergy"][0]
        for s in site["energyInfrastructureStation"]
        for p in s["refillPoint"]
    ]
    assert [len(e.get("energyRate", [])) for e in energies] == [1, 0, 0, 0]
    assert all(
        e["energyRateByReference"] == [{"targetClass": "EnergyRate", "idG": "NL-STK-site-1-rate-AC-DAG"}]
        for e in energies[1:]
    )
    assert energies[0]["isGreenEnergy"] is True
    assert energies[0]["energyProductName"]["values"][0]["value"] == "Hollandse Wind & Zon"


def test_opening_hours_and_around_the_clock(rendered: dict[str, Any]) -> None:
    hours = rendered["sites"][0]["operatingHours"]["afacOperatingHoursSpecification"]
    assert hours["idG"] == "NL-STK-site-1-hours"
    weekdays, saturday, opening = hours["overallPeriod"]["validPeriod"]
    assert weekdays["recurringTimePeriodOfDay"] == [
        {"startTimeOfPeriod": "07:00:00Z", "endTimeOfPeriod": "19:00:00Z"}
    ]
    assert len(weekdays["recurringDayWeekMonthPeriod"][0]["comDayWeekMonth"]["applicableDay"]) == 5
    assert saturday["recurringDayWeekMonthPeriod"][0]["comDayWeekMonth"]["applicableDay"] == [
        {"value": "saturday"}
    ]
    assert opening == {"startOfPeriod": "2026-04-05T09:00:00Z", "endOfPeriod": "2026-04-05T13:00:00Z"}
    assert hours["overallPeriod"]["exceptionPeriod"] == [
        {"startOfPeriod": "2026-12-24T23:00:00Z", "endOfPeriod": "2026-12-25T23:00:00Z"}
    ]
    assert rendered["sites"][1]["operatingHours"] == {"afacOpenAllHours": {}}


def test_address_coordinates_and_operator(rendered: dict[str, Any]) -> None:
    site = rendered["sites"][0]
    point = site["locationReference"]["locPointLocation"]
    assert point["pointByCoordinates"]["pointCoordinates"] == {"latitude": 52.089444, "longitude": 5.110278}
    where = point["locLocationExtensionG"]["FacilityLocation"]
    assert where["timeZone"] == "Europe/Amsterdam"
    assert where["address"]["countryCode"] == "NL"  # OCPI's NLD
    assert [
        (line["type"]["value"], line["text"]["values"][0]["value"])
        for line in where["address"]["addressLine"]
    ] == [
        ("street", "Stationsplein"),
        ("houseNumber", "12a"),
    ]
    lines = rendered["sites"][3]["locationReference"]["locPointLocation"]["locLocationExtensionG"][
        "FacilityLocation"
    ]["address"]["addressLine"]
    assert [line["text"]["values"][0]["value"] for line in lines] == ["Laan 1940-1945", "3"]
    operator = site["operator"]["afacAnOrganisation"]
    assert operator["externalIdentifier"][0]["identifier"] == "NL*STK"
    assert site["name"] == {"values": [{"lang": "nl", "value": HOSTILE_NAME}]}
    assert "name" not in rendered["sites"][3]


def _versions(document: Any) -> set[str]:
    return {d["versionG"] for d in _walk(document) if "versionG" in d}


def test_versions_follow_static_changes_only() -> None:
    prices = tariffs()
    before = fleet()[0]
    table_before = datex2.site_table_record(before, prices)
    assert table_before["versionG"] == str(int(STATIC_AT.timestamp()))
    # a status change: the table stays byte for byte, the status moves
    evses = [dict(e) for e in before.ocpi["evses"]]
    evses[0] |= {"status": "CHARGING", "last_updated": "2026-03-02T12:00:00Z"}
    moved = OpenLocation({**before.ocpi, "evses": evses}, before.station_of, before.static_changed_at)
    assert datex2.site_table_record(moved, prices) == table_before
    assert datex2.site_status_record(moved, prices) != datex2.site_status_record(before, prices)
    # a static change (the cache moves static_changed_at): every version moves forward
    later = OpenLocation(before.ocpi, before.station_of, STATIC_AT + timedelta(seconds=1))
    table_after = datex2.site_table_record(later, prices)
    assert _versions(table_before) == {str(int(STATIC_AT.timestamp()))}
    assert _versions(table_after) == {str(int(STATIC_AT.timestamp()) + 1)}
    assert int(datex2.version_of(STATIC_AT + timedelta(seconds=1))) > int(datex2.version_of(STATIC_AT))
    status_after = datex2.site_status_record(later, prices)
    assert {d["reference"]["versionG"] for d in _walk(status_after) if "reference" in d} == _versions(
        table_after
    )


def test_language_and_characters_xml_cannot_carry() -> None:
    prices = tariffs()
    loc = fleet()[2]
    site = datex2.site_table_record(loc, prices, lang="en")
    assert {v["lang"] for d in _walk(site) if "values" in d for v in d["values"]} == {"en"}
    with pytest.raises(ValueError, match="two lower-case letters"):
        datex2.site_table_record(loc, prices, lang="NLD")
    # a control character in a name is dropped from both forms alike
    evil = location(9, "Bad\x00name\x0b\x1f here", [("S9", loc.ocpi["evses"][0])])
    site = datex2.site_table_record(evil, prices)
    assert site["name"]["values"][0]["value"] == "Badname here"
    document = datex2.table_publication([site], PUBLISHER, NOW, 1)
    assert datex2_xml.xml_to_json(datex2_xml.table_xml(document)) == document


# --- caching: fragments -----------------------------------------------------------------------


def test_publications_from_cached_fragments_equal_the_whole(rendered: dict[str, Any]) -> None:
    table_bytes = datex2.table_publication_json(
        [datex2.json_fragment(s) for s in rendered["sites"]], PUBLISHER, NOW, TABLE_VERSION
    )
    assert table_bytes == orjson.dumps(rendered["table"])
    status_bytes = datex2.status_publication_json(
        [datex2.json_fragment(s) for s in rendered["statuses"]], PUBLISHER, NOW, TABLE_VERSION
    )
    assert status_bytes == orjson.dumps(rendered["status"])
    table_xml = datex2_xml.table_publication_xml(
        [datex2_xml.site_table_xml(s) for s in rendered["sites"]], PUBLISHER, NOW, TABLE_VERSION
    )
    assert table_xml == datex2_xml.table_xml(rendered["table"])
    status_xml = datex2_xml.status_publication_xml(
        [datex2_xml.site_status_xml(s) for s in rendered["statuses"]], PUBLISHER, NOW, TABLE_VERSION
    )
    assert status_xml == datex2_xml.status_xml(rendered["status"])


# --- XML form ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def xml(rendered: dict[str, Any]) -> dict[str, bytes]:
    return {
        "table": datex2_xml.table_xml(rendered["table"]),
        "status": datex2_xml.status_xml(rendered["status"]),
    }


def test_xml_is_well_formed_with_its_namespaces_declared(xml: dict[str, bytes]) -> None:
    table = etree.fromstring(xml["table"])
    assert table.tag == f"{{{NS['d2']}}}payload"
    assert table.get(f"{{{NS['xsi']}}}type") == "aegi:EnergyInfrastructureTablePublication"
    assert (table.get("lang"), table.get("modelBaseVersion"), table.get("profileVersion")) == (
        "nl",
        "3",
        "01-00-00",
    )
    for prefix in ("com", "loc", "locx", "afac", "aegi", "xsi"):
        assert table.nsmap[prefix] == NS[prefix]
    assert NS["aegi"] == "http://datex2.eu/schema/3/afirEnergyInfrastructure"
    assert NS["afac"] == "http://datex2.eu/schema/3/afirFacilities"
    status = etree.fromstring(xml["status"])
    assert status.tag == f"{{{NS['con']}}}messageContainer"
    assert (
        status.find("con:payload", NS).get(f"{{{NS['xsi']}}}type")
        == "aegi:EnergyInfrastructureStatusPublication"
    )
    protocol = status.find("con:exchangeInformation/ex:exchangeContext/ex:codedExchangeProtocol", NS)
    assert protocol.text == "snapshotPull"
    assert xml["table"].startswith(b'<?xml version="1.0" encoding="UTF-8"?>')


def test_xml_escapes_hostile_names_and_keeps_them(xml: dict[str, bytes]) -> None:
    assert b"Laadplein &lt;Noord&gt; &amp; \"Zuid\" 'Oost'" in xml["table"]
    assert HOSTILE_NAME.encode() not in xml["table"]  # never literally
    assert "Café Ünïcødé ⚡".encode() in xml["table"]  # UTF-8, not mangled
    table = etree.fromstring(xml["table"])
    names = table.xpath(
        "//aegi:energyInfrastructureSite/afac:name/com:values/com:value/text()", namespaces=NS
    )
    assert HOSTILE_NAME in names
    cities = table.xpath("//locx:city/com:values/com:value/text()", namespaces=NS)
    assert HOSTILE_CITY in cities


def test_xml_carries_ids_types_and_statuses(xml: dict[str, bytes]) -> None:
    table = etree.fromstring(xml["table"])
    sites = table.xpath("//aegi:energyInfrastructureSite", namespaces=NS)
    assert [s.get("id") for s in sites] == [f"NL-STK-site-{n}" for n in range(1, 5)]
    points = table.xpath("//aegi:refillPoint", namespaces=NS)
    assert len(points) == 10
    assert {p.get(f"{{{NS['xsi']}}}type") for p in points} == {"aegi:ElectricChargingPoint"}
    assert all(p.get("version") == str(int(STATIC_AT.timestamp())) for p in points)
    evse_ids = table.xpath(
        "//aegi:refillPoint/afac:externalIdentifier[afac:typeOfIdentifier/@_extendedValue='evseId']"
        "/afac:identifier/text()",
        namespaces=NS,
    )
    assert "NL*STK*E20001*1" in evse_ids and len(evse_ids) == 8  # two EVSEs have no eMI3 id
    # JSON's enumeration literal extendedG is _extended in XML, its extendedValueG an attribute
    assert set(table.xpath("//afac:typeOfIdentifier/text()", namespaces=NS)) == {"_extended"}
    assert b"extendedG" not in xml["table"]
    assert table.xpath("//afac:locationReference/@xsi:type", namespaces=NS)[0] == "loc:PointLocation"
    assert table.xpath("//loc:_locationExtension/loc:facilityLocation/locx:timeZone/text()", namespaces=NS)[
        0
    ] == ("Europe/Amsterdam")
    status = etree.fromstring(xml["status"])
    found = {
        s.find("afac:reference", NS).get("id"): s.find("aegi:status", NS).text
        for s in status.xpath("//aegi:refillPointStatus", namespaces=NS)
    }
    assert found["NL-STK-evse-CP-3*1"] == "unknown"
    assert found["NL-STK-evse-NL*STK*E30003*2"] == "removed"
    references = status.xpath("//afac:reference/@targetClass", namespaces=NS)
    assert set(references) == {"afac:FacilityObject"}
    assert set(status.xpath("//aegi:energyRateReference/@targetClass", namespaces=NS)) == {"aegi:EnergyRate"}


def test_xml_reads_back_as_the_json_form(rendered: dict[str, Any], xml: dict[str, bytes]) -> None:
    """The strong check of the mapping: XML → JSON gives exactly the JSON publication."""
    assert datex2_xml.xml_to_json(xml["table"]) == rendered["table"]
    assert datex2_xml.xml_to_json(xml["status"]) == rendered["status"]


def test_xml_writer_refuses_what_it_cannot_map(rendered: dict[str, Any]) -> None:
    site = copy.deepcopy(rendered["sites"][0])
    site["energyInfrastructureStation"][0]["photoUrl"] = [{"urlLinkAddress": "https://example.org"}]
    with pytest.raises(ValueError, match="photoUrl"):
        datex2_xml.site_table_xml(site)


def test_a_large_fleet_renders_valid_both_ways() -> None:
    """Fifty locations of the timing fleet: valid, and the XML reads back the same."""
    prices = tariffs()
    locations = big_fleet(50, 4)
    table = datex2.table_publication(
        [datex2.site_table_record(loc, prices) for loc in locations], PUBLISHER, NOW, TABLE_VERSION
    )
    status = datex2.status_publication(
        [datex2.site_status_record(loc, prices) for loc in locations], PUBLISHER, NOW, TABLE_VERSION
    )
    assert _errors(TABLE_SCHEMA, table) == []
    assert _errors(STATUS_SCHEMA, status) == []
    assert datex2_xml.xml_to_json(datex2_xml.table_xml(table)) == table
    assert datex2_xml.xml_to_json(datex2_xml.status_xml(status)) == status


def test_an_empty_fleet() -> None:
    """No public location: the status publication is still valid; the table is not (the schema
    wants one site at least), and the validator says so rather than the feed inventing one."""
    status = datex2.status_publication([], PUBLISHER, NOW, 1)
    assert _errors(STATUS_SCHEMA, status) == []
    assert datex2_xml.xml_to_json(datex2_xml.status_xml(status)) == status
    table = datex2.table_publication([], PUBLISHER, NOW, 1)
    assert any("energyInfrastructureSite" in e for e in _errors(TABLE_SCHEMA, table))
