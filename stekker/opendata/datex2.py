"""DATEX II v3, AFIR profile "AFIR Energy Infrastructure" 01-00-00: the JSON form (requirement 159).

Two publications, rendered from the open-data model (`OpenLocation`, `OpenTariff`) by pure
functions, one location at a time so the cache re-renders only the locations that changed:

- the static `EnergyInfrastructureTablePublication` (root `payload`): one table; per location a
  site, per charging station a station, per EVSE a refill point (`aegiElectricChargingPoint`)
  with its connectors and the energy rates of the ad-hoc tariffs its connectors name;
- the dynamic `EnergyInfrastructureStatusPublication` (root `messageContainer`, as the profile's
  example): per site, station and refill point the status and, per refill point, the ad-hoc
  prices again (`energyRateUpdate`, which AFIR wants in the dynamic part), all by reference to
  the table's ids and versions, plus a `tableReference` to the table itself.

Identifiers (`idG`), derived from our ids so they never change while the object exists, with
the location's OCPI country and party (CC, PARTY) in front:

    table                 CC-PARTY-table
    site (location)       CC-PARTY-site-<location id>
    opening hours         CC-PARTY-site-<location id>-hours
    station               CC-PARTY-station-<charging station id>
    refill point (EVSE)   CC-PARTY-evse-<EVSE uid>          (its eMI3 evse_id, if any, as externalIdentifier)
    energy rate           CC-PARTY-site-<location id>-rate-<tariff id>

An energy rate is defined once per site, at the first refill point it prices; the site's other
refill points name it with `energyRateByReference` (a fragment stays self-contained, and the
ids stay unique in the table, which the XML schema's uniqueness constraint demands).

Versions (`versionG`): the location's `static_changed_at` in whole seconds since the epoch, for
the site and everything in it (a status change does not touch it, a new price does). The table's
version is the caller's: pass `version_of(moment of the last static change of any location)`.
Both only move forward if the caller's moments do: that is the caller's to keep (also across
a restart).

Statuses (OCPI EVSE status → DATEX RefillPointStatusEnum), see `STATUS` for the judgement calls.

Caching: `site_table_record` and `site_status_record` give one location's part (a dict);
`json_fragment` makes bytes of it, and `table_publication_json` / `status_publication_json`
join such bytes into the whole document (the same bytes `orjson.dumps` gives of
`table_publication` / `status_publication` of the dicts). `datex2_xml` does the same in XML.
A table fragment changes only with `static_changed_at` (and the tariffs it shows); a status
fragment with any status, and with the tariffs too.

Prices: OCPI price components become `energyPrice` entries (ENERGY → pricePerKWh, TIME →
pricePerMinute, FLAT → basePrice, PARKING_TIME → extendedG "pricePerMinuteParking"), excl. VAT
as OCPI gives them, with `taxIncluded: false` and `taxRate` when OCPI names the VAT; restrictions
become periods and applicabilities; OCPI's "first matching element wins" becomes exceptions
where DATEX can say it (see `energy_prices`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, tzinfo
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from stekker.domain.opening_hours import Availability, opening_hours
from stekker.domain.plugs import max_power_w as max_power
from stekker.opendata.model import OpenLocation, OpenTariff, Publisher

MODEL_BASE_VERSION = "3"
PROFILE_NAME = "AFIR Energy Infrastructure"
PROFILE_VERSION = "01-00-00"
DEFAULT_LANG = "nl"
#: The version of the exchange specification the profile's example names.
EXCHANGE_SPECIFICATION_VERSION = "3.0"

#: OCPI 2.2.1 EVSE status → DATEX RefillPointStatusEnum.
STATUS: Mapping[str, str] = {
    "AVAILABLE": "available",
    # Judgement call: OCPI CHARGING is "the EVSE is in use" (we also show a plugged-in, suspended
    # or finishing session as CHARGING), which is DATEX "occupied: in use, this might include
    # charging"; DATEX "charging" claims energy flows, which we do not know.
    "CHARGING": "occupied",
    "RESERVED": "reserved",
    "BLOCKED": "blocked",  # both: not accessible because of a physical barrier (a car)
    # OCPI OUTOFORDER comes from an OCPP Faulted; DATEX has "faulted" too, "outOfOrder" is the
    # same word as OCPI's and means the same ("currently out of order").
    "OUTOFORDER": "outOfOrder",
    # Judgement call: OCPI INOPERATIVE is "not yet active or temporarily not available, not
    # broken" (an operator's Unavailable); DATEX "inoperative" is "not yet active or no longer
    # available", DATEX "unavailable" is "no energy available (failure, damage)". The first fits.
    "INOPERATIVE": "inoperative",
    "PLANNED": "planned",
    "REMOVED": "removed",
    "UNKNOWN": "unknown",  # both: also when offline
}
#: Statuses in which the station works (DATEX `isAvailable`: not faulted or in maintenance,
#: whether or not its refill points are occupied).
_WORKING = frozenset({"AVAILABLE", "CHARGING", "RESERVED", "BLOCKED"})

#: OCPI ConnectorType → DATEX ConnectorTypeEnum; anything else is "other" with its OCPI name.
CONNECTOR_TYPE: Mapping[str, str] = {
    "CHADEMO": "chademo",
    **{f"DOMESTIC_{c}": f"domestic{c}" for c in "ABCDEFGHIJKLMNO"},
    "IEC_60309_2_single_16": "iec60309x2single16",
    "IEC_60309_2_three_16": "iec60309x2three16",
    "IEC_60309_2_three_32": "iec60309x2three32",
    "IEC_60309_2_three_64": "iec60309x2three64",
    "IEC_62196_T1": "iec62196T1",
    "IEC_62196_T1_COMBO": "iec62196T1COMBO",
    "IEC_62196_T2": "iec62196T2",
    "IEC_62196_T2_COMBO": "iec62196T2COMBO",
    "IEC_62196_T3A": "iec62196T3A",
    "IEC_62196_T3C": "iec62196T3C",
    "MCS": "mcs",
    "PANTOGRAPH_BOTTOM_UP": "pantographBottomUp",
    "PANTOGRAPH_TOP_DOWN": "pantographTopDown",
    "TESLA_R": "teslaR",
    "TESLA_S": "teslaS",
}
#: OCPI Capability → DATEX AuthenticationAndIdentificationEnum (the ones that say how a
#: driver starts a session).
AUTHENTICATION: Mapping[str, str] = {
    "RFID_READER": "rfid",
    "REMOTE_START_STOP_CAPABLE": "apps",
    "CREDIT_CARD_PAYABLE": "creditCard",
    "DEBIT_CARD_PAYABLE": "debitCard",
    "CONTACTLESS_CARD_SUPPORT": "nfc",
    "PED_TERMINAL": "pinpad",
}
#: OCPI 2.2.1 Location.parking_type → DATEX EnergyInfrastructureSiteTypeEnum.
SITE_TYPE: Mapping[str, str] = {
    "ON_STREET": "onstreet",
    "PARKING_LOT": "openSpace",
    "ALONG_MOTORWAY": "openSpace",
    "PARKING_GARAGE": "inBuilding",
    "UNDERGROUND_GARAGE": "inBuilding",
    "ON_DRIVEWAY": "other",
}
#: OCPI country (ISO 3166-1 alpha-3) → DATEX CountryCode (alpha-2): Europe, where AFIR applies.
COUNTRY: Mapping[str, str] = {
    "ALB": "AL", "AND": "AD", "ARM": "AM", "AUT": "AT", "AZE": "AZ", "BEL": "BE", "BGR": "BG",
    "BIH": "BA", "BLR": "BY", "CHE": "CH", "CYP": "CY", "CZE": "CZ", "DEU": "DE", "DNK": "DK",
    "ESP": "ES", "EST": "EE", "FIN": "FI", "FRA": "FR", "GBR": "GB", "GEO": "GE", "GRC": "GR",
    "HRV": "HR", "HUN": "HU", "IRL": "IE", "ISL": "IS", "ITA": "IT", "LIE": "LI", "LTU": "LT",
    "LUX": "LU", "LVA": "LV", "MCO": "MC", "MDA": "MD", "MKD": "MK", "MLT": "MT", "MNE": "ME",
    "NLD": "NL", "NOR": "NO", "POL": "PL", "PRT": "PT", "ROU": "RO", "RUS": "RU", "SMR": "SM",
    "SRB": "RS", "SVK": "SK", "SVN": "SI", "SWE": "SE", "TUR": "TR", "UKR": "UA", "VAT": "VA",
    "XKX": "XK",
}  # fmt: skip
_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DOMESTIC = ("DOMESTIC_", "IEC_60309")
#: OCPI gives TIME and PARKING_TIME per hour, DATEX per minute: six decimals keep a price of
#: up to 100 per hour within a hundredth of a cent per hour.
_PER_MINUTE = Decimal("0.000001")
_SIXTY = Decimal(60)
#: Characters XML 1.0 cannot carry, not even escaped; dropped from every text so the JSON and
#: the XML form say the same.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_MAX_STRING = 1024  # DATEX String
_LANG = re.compile(r"[a-z]{2}")
_HOUSE_NUMBER = re.compile(r"(?P<street>.+?)\s+(?P<number>\d+(?:\s?[A-Za-z]{1,3}|[-/]\w+)?)")
_TIME_KEYS = frozenset({"start_time", "end_time", "day_of_week", "start_date", "end_date"})
_DURATION_KEYS = frozenset({"min_duration", "max_duration"})
_KWH_KEYS = frozenset({"min_kwh", "max_kwh"})
_PRICE_TYPE: Mapping[str, dict[str, str]] = {
    "ENERGY": {"value": "pricePerKWh"},
    "TIME": {"value": "pricePerMinute"},
    "FLAT": {"value": "basePrice"},  # "a base price which has to be added": a session fee
    # DATEX has no price for parking time; a machine-readable extension, not a wrong "per minute"
    "PARKING_TIME": {"value": "extendedG", "extendedValueG": "pricePerMinuteParking"},
}
_SHADOWED = "only where an earlier price of this kind does not apply"
_FACILITY_OBJECT = "FacilityObject"
_ENERGY_RATE = "EnergyRate"
_TABLE = "EnergyInfrastructureTable"


# --- identifiers and versions ---------------------------------------------------------------


def version_of(moment: datetime) -> str:
    """A DATEX version: the moment in whole seconds since the epoch (naive: UTC)."""
    return str(int(_aware(moment).timestamp()))


def table_id(country_code: str, party_id: str) -> str:
    return _clean(f"{country_code}-{party_id}-table")


def site_id(country_code: str, party_id: str, location_id: str) -> str:
    return _clean(f"{country_code}-{party_id}-site-{location_id}")


def station_id(country_code: str, party_id: str, station: str) -> str:
    return _clean(f"{country_code}-{party_id}-station-{station}")


def refill_point_id(country_code: str, party_id: str, evse_uid: str) -> str:
    return _clean(f"{country_code}-{party_id}-evse-{evse_uid}")


def energy_rate_id(country_code: str, party_id: str, location_id: str, tariff_id: str) -> str:
    return _clean(f"{country_code}-{party_id}-site-{location_id}-rate-{tariff_id}")


# --- small pieces ---------------------------------------------------------------------------


def _clean(text: Any) -> str:
    return _NOT_XML.sub("", str(text))[:_MAX_STRING]


def _mls(text: Any, lang: str) -> dict[str, Any]:
    """A DATEX MultilingualString in one language."""
    return {"values": [{"lang": lang, "value": _clean(text)}]}


def _enum(value: str) -> dict[str, str]:
    return {"value": value}


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _dt(moment: datetime) -> str:
    """DATEX DateTime: whole seconds, UTC written as Z, any other offset kept."""
    moment = _aware(moment).replace(microsecond=0)
    if moment.utcoffset() == UTC.utcoffset(None):
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return moment.isoformat()


@functools.lru_cache(maxsize=4096)
def _wire_dt(text: Any) -> str:
    """An OCPI DateTime (text) as a DATEX DateTime."""
    return _dt(_instant(str(text)))


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _time_of_day(text: Any) -> str:
    """OCPI "HH:MM" (local time) as a DATEX Time. The profile writes a trailing Z "for
    technical reasons", which it says does not mean UTC: the hours stay local."""
    return f"{str(text)[:5]}:00Z"


def _zone(name: Any) -> tzinfo:
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def _local_midnight(day: Any, zone: tzinfo) -> str:
    """The start of an OCPI date (YYYY-MM-DD, local) as a DATEX DateTime with its offset."""
    return _dt(datetime.combine(date.fromisoformat(str(day)), time(0), zone))


def _decimal(value: Any) -> Decimal:
    try:
        return Decimal(str(value))
    except InvalidOperation as error:
        raise ValueError(f"not a number: {value!r}") from error


def _number(value: Decimal) -> int | float:
    """A JSON number: an int when whole (so 22000 stays 22000), else a float."""
    return int(value) if value == value.to_integral_value() else float(value)


def _whole(value: Any) -> int:
    return int(_decimal(value).to_integral_value(rounding=ROUND_HALF_EVEN))


def _lang(lang: str) -> str:
    if not _LANG.fullmatch(lang):
        raise ValueError(f"a DATEX language is two lower-case letters (ISO 639-1), not {lang!r}")
    return lang


# --- locations ------------------------------------------------------------------------------


def _address_lines(address: str, lang: str) -> list[dict[str, Any]]:
    """OCPI has one address line ("Stationsplein 12a"); the profile wants street and house
    number apart. A trailing number is split off; otherwise the whole line is the street."""
    found = _HOUSE_NUMBER.fullmatch(address.strip())
    parts = (
        [("street", found["street"]), ("houseNumber", found["number"])] if found else [("street", address)]
    )
    return [
        {"order": order, "type": _enum(kind), "text": _mls(text, lang)}
        for order, (kind, text) in enumerate(parts)
        if text.strip()
    ]


def _point_location(ocpi: Mapping[str, Any], lang: str) -> dict[str, Any]:
    """The location as a DATEX point: WGS84 coordinates, time zone (IANA name) and address."""
    coordinates = ocpi["coordinates"]
    point = {"latitude": float(coordinates["latitude"]), "longitude": float(coordinates["longitude"])}
    address: dict[str, Any] = {}
    if ocpi.get("postal_code"):
        address["postcode"] = _clean(ocpi["postal_code"])
    if ocpi.get("city"):
        address["city"] = _mls(ocpi["city"], lang)
    country = str(ocpi.get("country") or "")
    code = COUNTRY.get(country.upper(), country.upper() if len(country) == 2 else None)
    if code:
        address["countryCode"] = code
    lines = _address_lines(str(ocpi.get("address") or ""), lang)
    if lines:
        address["addressLine"] = lines
    where: dict[str, Any] = {}
    if ocpi.get("time_zone"):
        where["timeZone"] = _clean(ocpi["time_zone"])
    if address:
        where["address"] = address
    result: dict[str, Any] = {"coordinatesForDisplay": point}
    if where:
        result["locLocationExtensionG"] = {"FacilityLocation": where}
    result["pointByCoordinates"] = {"pointCoordinates": dict(point)}
    return {"locPointLocation": result}


def _operator(ocpi: Mapping[str, Any], lang: str) -> dict[str, Any]:
    """The operator: the name drivers see, and its eMI3 operator id (CC*PARTY). The profile
    also wants a legal name, which we do not hold apart: the same name stands for it."""
    name = (ocpi.get("operator") or {}).get("name") or ocpi["party_id"]
    return {
        "afacAnOrganisation": {
            "name": _mls(name, lang),
            "legalName": _mls(name, lang),
            "externalIdentifier": [
                {
                    "identifier": _clean(f"{ocpi['country_code']}*{ocpi['party_id']}"),
                    "typeOfIdentifier": {"value": "extendedG", "extendedValueG": "operatorId"},
                }
            ],
        }
    }


def _operating_hours(
    hours: Mapping[str, Any] | None, hours_id: str, version: str, since: str
) -> dict[str, Any]:
    """OCPI Hours as DATEX operating hours: open around the clock, or a specification whose
    valid periods are the regular hours (weekdays with the same hours grouped) and the
    exceptional openings, and whose exception periods are the exceptional closings."""
    availability = opening_hours(hours).availability  # the one reading of every edge
    if availability is Availability.ALWAYS or hours is None:
        return {"afacOpenAllHours": {}}
    if availability is Availability.UNKNOWN:
        return {"afacUnknownOperatingHours": {}}
    spans: dict[tuple[str, str], list[int]] = {}
    for regular in hours.get("regular_hours") or ():
        key = (_time_of_day(regular["period_begin"]), _time_of_day(regular["period_end"]))
        if 1 <= int(regular["weekday"]) <= 7:
            spans.setdefault(key, []).append(int(regular["weekday"]))
    valid: list[dict[str, Any]] = [
        {
            "recurringTimePeriodOfDay": [{"startTimeOfPeriod": begin, "endTimeOfPeriod": end}],
            "recurringDayWeekMonthPeriod": [
                {"comDayWeekMonth": {"applicableDay": [_enum(_DAYS[d - 1]) for d in sorted(set(days))]}}
            ],
        }
        for (begin, end), days in spans.items()
    ]
    valid += [
        {"startOfPeriod": _wire_dt(p["period_begin"]), "endOfPeriod": _wire_dt(p["period_end"])}
        for p in hours.get("exceptional_openings") or ()
    ]
    closed = [
        {"startOfPeriod": _wire_dt(p["period_begin"]), "endOfPeriod": _wire_dt(p["period_end"])}
        for p in hours.get("exceptional_closings") or ()
    ]
    if not valid:
        # not open around the clock, yet no hours given: OCPI leaves us nothing to state
        return {"afacUnknownOperatingHours": {}}
    overall: dict[str, Any] = {"overallStartTime": since, "validPeriod": valid}
    if closed:
        overall["exceptionPeriod"] = closed
    return {
        "afacOperatingHoursSpecification": {
            "idG": hours_id,
            "versionG": version,
            "operatingAllYear": True,
            "overallPeriod": overall,
        }
    }


# --- prices ---------------------------------------------------------------------------------


def _present(restrictions: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in restrictions.items() if v is not None and v != [] and v != ""}


def _period(restrictions: Mapping[str, Any], zone: tzinfo) -> dict[str, Any]:
    """The time-of-day, weekday and date restrictions of an OCPI tariff element as a Period."""
    period: dict[str, Any] = {}
    if restrictions.get("start_date"):
        period["startOfPeriod"] = _local_midnight(restrictions["start_date"], zone)
    if restrictions.get("end_date"):  # OCPI: up to, excluding, that day
        period["endOfPeriod"] = _local_midnight(restrictions["end_date"], zone)
    if restrictions.get("start_time") or restrictions.get("end_time"):
        period["recurringTimePeriodOfDay"] = [
            {
                "startTimeOfPeriod": _time_of_day(restrictions.get("start_time") or "00:00"),
                "endTimeOfPeriod": _time_of_day(restrictions.get("end_time") or "00:00"),
            }
        ]
    days = restrictions.get("day_of_week") or ()
    if days:
        period["recurringDayWeekMonthPeriod"] = [
            {"comDayWeekMonth": {"applicableDay": [_enum(str(d).lower()) for d in days]}}
        ]
    return period


_BOUNDS = (
    ("min_duration", "max_duration"),
    ("min_kwh", "max_kwh"),
    ("min_current", "max_current"),
    ("min_power", "max_power"),
)


def _exclusive(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether two OCPI restrictions can never hold together: no weekday in common, or a
    [min, max) range of one (duration, kWh, current, power) ending where the other's starts."""
    days_a, days_b = set(a.get("day_of_week") or ()), set(b.get("day_of_week") or ())
    if days_a and days_b and not days_a & days_b:
        return True
    for low, high in _BOUNDS:
        for x, y in ((a, b), (b, a)):
            if x.get(high) is not None and y.get(low) is not None:
                if _decimal(y[low]) >= _decimal(x[high]):
                    return True
    return False


def _range(low: Any, high: Any, scale: Decimal) -> tuple[int | None, int | None]:
    """An OCPI [min, max) bound pair in DATEX's whole units (minutes, kWh); rounds what is not whole."""
    return (
        None if low in (None, 0) else _whole(_decimal(low) / scale),
        None if high is None else _whole(_decimal(high) / scale),
    )


_WORDS = {
    "min_current": "current >= {} A",
    "max_current": "current < {} A",
    "min_power": "power >= {} kW",
    "max_power": "power < {} kW",
}


def _notes(restrictions: Mapping[str, Any]) -> list[str]:
    """What an OCPI restriction says that DATEX cannot (current, power): stated in words."""
    return [_WORDS[k].format(_number(_decimal(v))) for k, v in restrictions.items() if k in _WORDS]


def _energy_price(
    component: Mapping[str, Any],
    restrictions: Mapping[str, Any],
    earlier: Sequence[Mapping[str, Any]],
    zone: tzinfo,
    since: str,
) -> dict[str, Any] | None:
    """One OCPI price component as a DATEX EnergyPrice, or None when it can never apply."""
    kind = str(component["type"])
    price = _decimal(component["price"])
    if kind in ("TIME", "PARKING_TIME"):
        price = (price / _SIXTY).quantize(_PER_MINUTE, rounding=ROUND_HALF_EVEN).normalize()
    result: dict[str, Any] = {"priceType": dict(_PRICE_TYPE[kind]), "value": _number(price)}
    if component.get("vat") is not None:
        # OCPI prices are excl. VAT, and `vat` is the rate to add; without `vat` no VAT applies
        result["taxIncluded"] = False
        result["taxRate"] = _number(_decimal(component["vat"]))
    minutes = list(_range(restrictions.get("min_duration"), restrictions.get("max_duration"), _SIXTY))
    kwh = list(_range(restrictions.get("min_kwh"), restrictions.get("max_kwh"), Decimal(1)))
    notes = _notes(restrictions)
    exceptions: list[dict[str, Any]] = []
    # OCPI: per dimension the first element whose restrictions hold wins; DATEX applies every
    # price within its applicability. So a later price excludes where an earlier one applies,
    # as far as DATEX can say "not there".
    for before in earlier:
        keys = set(before)
        if _exclusive(before, restrictions):
            continue
        if keys <= _TIME_KEYS:
            exceptions.append(_period(before, zone))
            continue
        if keys <= _DURATION_KEYS:
            bounds = minutes
            low, high = _range(before.get("min_duration"), before.get("max_duration"), _SIXTY)
        elif keys <= _KWH_KEYS:
            bounds = kwh
            low, high = _range(before.get("min_kwh"), before.get("max_kwh"), Decimal(1))
        else:
            notes.append(_SHADOWED)
            continue
        if low is None and high is None:  # e.g. min_duration 0: the earlier one always applies
            return None
        if low is None and high is not None:  # earlier: [0, high) → this one from `high` on
            bounds[0] = high if bounds[0] is None else max(bounds[0], high)
        elif high is None and low is not None:  # earlier: [low, ∞) → this one up to `low`
            bounds[1] = low if bounds[1] is None else min(bounds[1], low)
        else:
            notes.append(_SHADOWED)
        if bounds[0] is not None and bounds[1] is not None and bounds[1] <= bounds[0]:
            return None
    if notes:
        result["additionalInformation"] = _mls("Applies only when: " + "; ".join(dict.fromkeys(notes)), "en")
    valid = _period(restrictions, zone)
    if valid or exceptions:
        overall: dict[str, Any] = {"overallStartTime": since}
        if valid:
            overall["validPeriod"] = [valid]
        if exceptions:
            overall["exceptionPeriod"] = exceptions
        result["overallPeriod"] = overall
    if minutes != [None, None]:
        result["timeBasedApplicability"] = _bounds("fromMinute", "toMinute", minutes)
    if kwh != [None, None]:
        result["energyBasedApplicability"] = _bounds("fromKWh", "toKWh", kwh)
    return result


def _bounds(low_key: str, high_key: str, bounds: Sequence[int | None]) -> dict[str, int]:
    result = {}
    if bounds[0] is not None:
        result[low_key] = bounds[0]
    if bounds[1] is not None:
        result[high_key] = bounds[1]
    return result


def energy_prices(tariff: Mapping[str, Any], zone: tzinfo = UTC) -> list[dict[str, Any]]:
    """An OCPI 2.2.1 tariff's price components as DATEX EnergyPrice objects.

    Left out: elements restricted to reservations (they price a reservation, not charging) and
    elements an earlier unrestricted element of the same dimension always beats. Restrictions
    become: time of day, weekdays, dates → `overallPeriod`; duration → `timeBasedApplicability`
    (minutes); kWh → `energyBasedApplicability`; current and power → words in
    `additionalInformation`. `step_size` has no DATEX counterpart. A tariff whose every price is
    zero (and that has no minimum price) is one "free" price."""
    since = _wire_dt(tariff.get("start_date_time") or tariff["last_updated"])
    claimed: dict[str, list[dict[str, Any]]] = {}
    result: list[dict[str, Any]] = []
    for element in tariff.get("elements") or ():
        restrictions = _present(element.get("restrictions") or {})
        if restrictions.get("reservation"):
            continue
        components = [c for c in element.get("price_components") or () if c.get("type") in _PRICE_TYPE]
        for component in components:
            earlier = claimed.get(str(component["type"]), [])
            if any(not r for r in earlier):
                continue
            price = _energy_price(component, restrictions, earlier, zone, since)
            if price is not None:
                result.append(price)
        for kind in {str(c["type"]) for c in components}:
            claimed.setdefault(kind, []).append(restrictions)
    minimum = (tariff.get("min_price") or {}).get("excl_vat")
    if result and all(p["value"] == 0 for p in result) and not minimum:
        return [{"priceType": _enum("free"), "value": 0}]
    return result


def energy_rate(
    tariff: Mapping[str, Any],
    rate_id: str,
    zone: tzinfo = UTC,
    lang: str = DEFAULT_LANG,
    prices: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """An OCPI tariff as a DATEX EnergyRate: ad hoc (what a driver without a contract pays;
    REGULAR, a contract tariff, would be "contract"), its currency, prices, minimum and
    maximum session price (excl. VAT, like the prices), alternative texts and validity."""
    policy = "contract" if tariff.get("type") == "REGULAR" else "adHoc"
    if prices is None:
        prices = energy_prices(tariff, zone)
    rate: dict[str, Any] = {
        "idG": rate_id,
        "ratePolicy": _enum(policy),
        "lastUpdated": _wire_dt(tariff["last_updated"]),
        "applicableCurrency": [_clean(tariff["currency"])],
        "rateName": _mls(tariff["id"], lang),
    }
    if any(p["priceType"].get("extendedValueG") == "pricePerMinuteParking" for p in prices):
        rate["combinationWithParkingFee"] = True  # one fee for charging and parking
    for key, name in (("max_price", "maximumDeliveryFee"), ("min_price", "minimumDeliveryFee")):
        amount = (tariff.get(key) or {}).get("excl_vat")
        if amount is not None:
            rate[name] = _number(_decimal(amount))
    texts = [
        {"lang": str(t["language"]).lower(), "value": _clean(t["text"])}
        for t in tariff.get("tariff_alt_text") or ()
        if _LANG.fullmatch(str(t.get("language", "")).lower()) and t.get("text")
    ]
    if texts:
        rate["additionalInformation"] = {"values": texts}
    if prices:
        rate["energyPrice"] = prices
    if tariff.get("start_date_time") or tariff.get("end_date_time"):
        period = {"overallStartTime": _wire_dt(tariff.get("start_date_time") or tariff["last_updated"])}
        if tariff.get("end_date_time"):
            period["overallEndTime"] = _wire_dt(tariff["end_date_time"])
        rate["overallPeriod"] = period
    return rate


@functools.lru_cache(maxsize=256)
def _prices_json(tariff: bytes, zone: str) -> bytes:
    return orjson.dumps(energy_prices(orjson.loads(tariff), _zone(zone)))


class _Prices:
    """The energy prices of the tariffs one site names: converted once per tariff content and
    time zone (a small cache of their JSON), read once per site (its records share them)."""

    def __init__(self, tariffs: Mapping[str, OpenTariff], zone: str) -> None:
        self.tariffs = tariffs
        self.zone = zone
        self._found: dict[str, list[dict[str, Any]]] = {}

    def of(self, code: str) -> list[dict[str, Any]]:
        found = self._found.get(code)
        if found is None:
            key = orjson.dumps(self.tariffs[code].ocpi, default=str, option=orjson.OPT_SORT_KEYS)
            found = self._found[code] = orjson.loads(_prices_json(key, self.zone))
        return found


# --- EVSEs ----------------------------------------------------------------------------------


def _power(connector: Mapping[str, Any]) -> int:
    return max_power(
        str(connector["power_type"]),
        int(connector.get("max_voltage") or 0),
        int(connector.get("max_amperage") or 0),
        connector.get("max_electric_power"),
    )


def _charging_mode(connector: Mapping[str, Any]) -> dict[str, str]:
    """IEC 61851 mode: DC is mode 4; AC at a vehicle connector (IEC 62196) mode 3, at a
    household or industrial socket mode 2 (the driver's cable controls). DATEX has no
    "mode 3, one phase": that one is an extendedG value."""
    power_type, standard = str(connector["power_type"]), str(connector["standard"])
    if power_type == "DC":
        return _enum("mode4DC")
    three = power_type == "AC_3_PHASE"
    if standard.startswith(_DOMESTIC):
        return _enum("mode2AC3p" if three else "mode2AC1p")
    return _enum("mode3AC3p") if three else {"value": "extendedG", "extendedValueG": "mode3AC1p"}


def _connector(connector: Mapping[str, Any]) -> dict[str, Any]:
    standard = str(connector["standard"])
    result: dict[str, Any] = {"connectorType": _enum(CONNECTOR_TYPE.get(standard, "other"))}
    if standard not in CONNECTOR_TYPE:
        result["otherConnector"] = _clean(standard)
    if connector.get("format") == "SOCKET":
        result["connectorFormat"] = _enum("socket")
    elif connector.get("format") == "CABLE":
        ac_vehicle = connector["power_type"] != "DC" and standard.startswith("IEC_62196")
        result["connectorFormat"] = _enum("cableMode3" if ac_vehicle else "otherCable")
    result["maxPowerAtSocket"] = _power(connector)
    if connector.get("max_voltage"):
        result["voltage"] = int(connector["max_voltage"])
    if connector.get("max_amperage"):
        result["maximumCurrent"] = int(connector["max_amperage"])
    return result


def _tariff_ids(evse: Mapping[str, Any], tariffs: Mapping[str, OpenTariff]) -> list[str]:
    """The tariffs pricing the EVSE (its connectors' tariff ids, first seen first) we know."""
    seen: list[str] = []
    for connector in evse.get("connectors") or ():
        for code in connector.get("tariff_ids") or ():
            if code in tariffs and code not in seen:
                seen.append(code)
    return seen


def _refill_point(
    evse: Mapping[str, Any],
    ocpi: Mapping[str, Any],
    tariffs: Mapping[str, OpenTariff],
    defined: set[str],
    version: str,
    updated: str,
    book: _Prices,
    lang: str,
) -> dict[str, Any]:
    cc, party, location = ocpi["country_code"], ocpi["party_id"], str(ocpi["id"])
    connectors = list(evse.get("connectors") or ())
    strongest = max(connectors, key=_power)
    point: dict[str, Any] = {
        "idG": refill_point_id(cc, party, evse["uid"]),
        "versionG": version,
    }
    if evse.get("physical_reference"):
        point["name"] = _mls(evse["physical_reference"], lang)
    point["lastUpdated"] = updated
    if evse.get("evse_id"):
        point["externalIdentifier"] = [
            {
                "identifier": _clean(evse["evse_id"]),
                "typeOfIdentifier": {"value": "extendedG", "extendedValueG": "evseId"},
            }
        ]
    point["deliveryUnit"] = _enum("kWh")
    point["currentType"] = _enum("dc" if strongest["power_type"] == "DC" else "ac")
    point["usageType"] = [_enum("electricVehicle")]
    point["numberOfConnectors"] = len(connectors)
    voltages = sorted({int(c["max_voltage"]) for c in connectors if c.get("max_voltage")}, reverse=True)
    if voltages:
        point["availableVoltage"] = voltages
    point["availableChargingPower"] = sorted({_power(c) for c in connectors}, reverse=True)  # max first
    point["chargingMode"] = _charging_mode(strongest)
    point["connector"] = [_connector(c) for c in connectors]
    energy: dict[str, Any] = {}
    mix = ocpi.get("energy_mix") or {}
    if mix.get("energy_product_name"):
        energy["energyProductName"] = _mls(mix["energy_product_name"], lang)
    if isinstance(mix.get("is_green_energy"), bool):
        energy["isGreenEnergy"] = mix["is_green_energy"]
    impacts = {i.get("category"): i.get("amount") for i in mix.get("environ_impact") or ()}
    if impacts.get("CARBON_DIOXIDE") is not None:
        energy["carbonDioxideImpact"] = _number(_decimal(impacts["CARBON_DIOXIDE"]))
    if impacts.get("NUCLEAR_WASTE") is not None:
        energy["nuclearWasteImpact"] = _number(_decimal(impacts["NUCLEAR_WASTE"]))
    codes = _tariff_ids(evse, tariffs)
    by_reference = [c for c in codes if c in defined]
    if by_reference:
        energy["energyRateByReference"] = [
            {"targetClass": _ENERGY_RATE, "idG": energy_rate_id(cc, party, location, c)} for c in by_reference
        ]
    new = [c for c in codes if c not in defined]
    if new:
        energy["energyRate"] = [
            energy_rate(tariffs[c].ocpi, energy_rate_id(cc, party, location, c), lang=lang, prices=book.of(c))
            for c in new
        ]
        defined.update(new)
    if energy:
        point["electricEnergy"] = [energy]
    return {"aegiElectricChargingPoint": point}


def _stations(location: OpenLocation) -> list[tuple[str, list[Mapping[str, Any]]]]:
    """The location's EVSEs grouped by charging station, in the order OCPI lists them. An EVSE
    without a known station gets a station of its own (DATEX has no refill point without one)."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    cc, party = location.ocpi["country_code"], location.ocpi["party_id"]
    for evse in location.ocpi.get("evses") or ():
        if not evse.get("connectors"):
            continue  # OCPI wants at least one; without, there is nothing to charge at
        station = location.station_of.get(evse["uid"])
        key = (
            station_id(cc, party, station)
            if station is not None
            else _clean(f"{site_id(cc, party, str(location.ocpi['id']))}-evse-{evse['uid']}-station")
        )
        groups.setdefault(key, []).append(evse)
    return list(groups.items())


def _authentication(evses: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    found = {AUTHENTICATION[c] for e in evses for c in e.get("capabilities") or () if c in AUTHENTICATION}
    return [_enum(v) for v in sorted(found)]


# --- the records per site -------------------------------------------------------------------


def site_table_record(
    location: OpenLocation, tariffs: Mapping[str, OpenTariff], *, lang: str = DEFAULT_LANG
) -> dict[str, Any]:
    """The location as a DATEX EnergyInfrastructureSite (static): address and coordinates,
    operator, opening hours, its stations, their refill points, connectors and energy rates."""
    _lang(lang)
    ocpi = location.ocpi
    cc, party, location_id = ocpi["country_code"], ocpi["party_id"], str(ocpi["id"])
    version = version_of(location.static_changed_at)
    updated = _dt(location.static_changed_at)
    book = _Prices(tariffs, str(ocpi.get("time_zone") or "UTC"))
    where = _point_location(ocpi, lang)
    operator = _operator(ocpi, lang)
    site_key = site_id(cc, party, location_id)
    site: dict[str, Any] = {"idG": site_key, "versionG": version}
    if ocpi.get("name"):
        site["name"] = _mls(ocpi["name"], lang)
    site["lastUpdated"] = updated
    site["operatingHours"] = _operating_hours(
        ocpi.get("opening_times"), f"{site_key}-hours", version, updated
    )
    site["locationReference"] = where
    site["operator"] = operator
    if ocpi.get("parking_type") in SITE_TYPE:
        site["typeOfSite"] = _enum(SITE_TYPE[ocpi["parking_type"]])
    defined: set[str] = set()  # energy rates written out in full so far (then by reference)
    stations = []
    for key, evses in _stations(location):
        points = [_refill_point(e, ocpi, tariffs, defined, version, updated, book, lang) for e in evses]
        station: dict[str, Any] = {"idG": key, "versionG": version, "lastUpdated": updated}
        station["locationReference"] = where
        station["operator"] = operator
        # the sum of its refill points' maxima: we know no lower limit of the grid connection
        station["totalMaximumPower"] = sum(
            p["aegiElectricChargingPoint"]["availableChargingPower"][0] for p in points
        )
        methods = _authentication(evses)
        if methods:
            station["authenticationAndIdentificationMethods"] = methods
        station["numberOfRefillPoints"] = len(points)
        station["serviceType"] = [{"serviceType": _enum("unattended")}]  # public charging: nobody attends
        station["refillPoint"] = points
        stations.append(station)
    site["energyInfrastructureStation"] = stations
    return site


def _price_updates(
    evse: Mapping[str, Any], ocpi: Mapping[str, Any], tariffs: Mapping[str, OpenTariff], book: _Prices
) -> list[dict[str, Any]]:
    cc, party, location_id = ocpi["country_code"], ocpi["party_id"], str(ocpi["id"])
    updates = []
    for code in _tariff_ids(evse, tariffs):
        update: dict[str, Any] = {
            "lastUpdated": _wire_dt(tariffs[code].ocpi["last_updated"]),
            "energyRateReference": {
                "targetClass": _ENERGY_RATE,
                "idG": energy_rate_id(cc, party, location_id, code),
            },
        }
        prices = book.of(code)
        if prices:
            update["energyPrice"] = prices
        updates.append(update)
    return updates


def _point_status(
    evse: Mapping[str, Any],
    ocpi: Mapping[str, Any],
    tariffs: Mapping[str, OpenTariff],
    version: str,
    book: _Prices,
) -> dict[str, Any]:
    status: dict[str, Any] = {
        "reference": _reference(
            refill_point_id(ocpi["country_code"], ocpi["party_id"], evse["uid"]), version
        ),
        "lastUpdated": _wire_dt(evse["last_updated"]),
        "status": _enum(STATUS.get(str(evse.get("status")), "unknown")),
    }
    updates = _price_updates(evse, ocpi, tariffs, book)
    if updates:
        status["energyRateUpdate"] = updates
    return {"aegiElectricChargingPointStatus": status}


def _reference(key: str, version: str) -> dict[str, str]:
    return {"targetClass": _FACILITY_OBJECT, "idG": key, "versionG": version}


def station_available(statuses: Iterable[str]) -> bool | None:
    """DATEX `isAvailable` of a station: True when one of its EVSEs works (occupied or not),
    False when none does, None (left out) when the EVSEs that do not work include unknown ones."""
    seen = set(statuses)
    if seen & _WORKING:
        return True
    return None if "UNKNOWN" in seen or not seen else False


def site_status_record(
    location: OpenLocation, tariffs: Mapping[str, OpenTariff], *, lang: str = DEFAULT_LANG
) -> dict[str, Any]:
    """The location's live part as a DATEX EnergyInfrastructureSiteStatus: per station and
    refill point its status, and per refill point its ad-hoc prices, by reference to the table.
    `lang` is checked as for the table; the status itself carries no text of ours."""
    _lang(lang)
    ocpi = location.ocpi
    cc, party = ocpi["country_code"], ocpi["party_id"]
    version = version_of(location.static_changed_at)
    book = _Prices(tariffs, str(ocpi.get("time_zone") or "UTC"))
    stations = []
    for key, evses in _stations(location):
        points = [_point_status(e, ocpi, tariffs, version, book) for e in evses]
        station: dict[str, Any] = {
            "reference": _reference(key, version),
            "lastUpdated": max((_wire_dt(e["last_updated"]) for e in evses), key=_instant),
        }
        available = station_available(str(e.get("status")) for e in evses)
        if available is not None:
            station["isAvailable"] = available
        station["refillPointStatus"] = points
        stations.append(station)
    return {
        "reference": _reference(site_id(cc, party, str(ocpi["id"])), version),
        "lastUpdated": _wire_dt(ocpi["last_updated"]),
        "energyInfrastructureStationStatus": stations,
    }


# --- the publications -----------------------------------------------------------------------


def _header(information_status: str) -> dict[str, Any]:
    return {"confidentiality": _enum("noRestriction"), "informationStatus": _enum(information_status)}


def _creator(publisher: Publisher) -> dict[str, str]:
    return {
        "country": publisher.country_code.upper(),
        "nationalIdentifier": _clean(publisher.national_identifier),
    }


def _payload(kind: str, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "modelBaseVersionG": MODEL_BASE_VERSION,
        "profileNameG": PROFILE_NAME,
        "profileVersionG": PROFILE_VERSION,
        kind: body,
    }


def table_publication(
    site_records: Sequence[object],
    publisher: Publisher,
    published_at: datetime,
    table_version: str | int,
    *,
    lang: str = DEFAULT_LANG,
    information_status: str = "real",
) -> dict[str, Any]:
    """The EnergyInfrastructureTablePublication (root `payload`) of the site records
    (`site_table_record`; or `orjson.Fragment`s of their JSON, see `table_publication_json`).

    The schema wants at least one site: with none the document does not validate, and saying
    so is the truth (there is nothing to publish)."""
    return {
        "payload": _payload(
            "aegiEnergyInfrastructureTablePublication",
            {
                "lang": _lang(lang),
                "publicationTime": _dt(published_at),
                "publicationCreator": _creator(publisher),
                "headerInformation": _header(information_status),
                "energyInfrastructureTable": [
                    {
                        "idG": table_id(publisher.country_code, publisher.party_id),
                        "versionG": str(table_version),
                        "tableName": _clean(publisher.name),
                        "energyInfrastructureSite": list(site_records),
                    }
                ],
            },
        )
    }


def status_publication(
    site_status_records: Sequence[object],
    publisher: Publisher,
    published_at: datetime,
    table_version: str | int,
    *,
    lang: str = DEFAULT_LANG,
    information_status: str = "real",
    exchange_protocol: str = "snapshotPull",
) -> dict[str, Any]:
    """The EnergyInfrastructureStatusPublication in a `messageContainer` (the profile's form for
    the dynamic part), referring to the table (its id and `table_version`). `exchange_protocol`:
    snapshotPull for a feed clients fetch; snapshotPush or deltaPush when pushed to a NAP."""
    return {
        "messageContainer": {
            "payload": [
                _payload(
                    "aegiEnergyInfrastructureStatusPublication",
                    {
                        "lang": _lang(lang),
                        "publicationTime": _dt(published_at),
                        "tableReference": [
                            {
                                "targetClass": _TABLE,
                                "idG": table_id(publisher.country_code, publisher.party_id),
                                "versionG": str(table_version),
                            }
                        ],
                        "publicationCreator": _creator(publisher),
                        "headerInformation": _header(information_status),
                        # optional, and absent when empty (XML has no empty list)
                        **(
                            {"energyInfrastructureSiteStatus": list(site_status_records)}
                            if site_status_records
                            else {}
                        ),
                    },
                )
            ],
            "exchangeInformation": {
                "exchangeContext": {
                    "codedExchangeProtocol": _enum(exchange_protocol),
                    "exchangeSpecificationVersion": EXCHANGE_SPECIFICATION_VERSION,
                    "supplierOrCisRequester": {"internationalIdentifier": _creator(publisher)},
                },
                "dynamicInformation": {
                    "exchangeStatus": _enum("online"),
                    "messageGenerationTimestamp": _dt(published_at),
                },
            },
        }
    }


def json_fragment(record: Mapping[str, Any]) -> bytes:
    """A site record as JSON bytes, to cache and join with `*_publication_json`."""
    return orjson.dumps(record)


def table_publication_json(
    fragments: Sequence[bytes],
    publisher: Publisher,
    published_at: datetime,
    table_version: str | int,
    *,
    lang: str = DEFAULT_LANG,
    information_status: str = "real",
) -> bytes:
    """The table publication as JSON bytes from cached site fragments (`json_fragment`)."""
    records = [orjson.Fragment(f) for f in fragments]
    document = table_publication(
        records, publisher, published_at, table_version, lang=lang, information_status=information_status
    )
    return orjson.dumps(document)


def status_publication_json(
    fragments: Sequence[bytes],
    publisher: Publisher,
    published_at: datetime,
    table_version: str | int,
    *,
    lang: str = DEFAULT_LANG,
    information_status: str = "real",
    exchange_protocol: str = "snapshotPull",
) -> bytes:
    """The status publication as JSON bytes from cached site status fragments."""
    records = [orjson.Fragment(f) for f in fragments]
    document = status_publication(
        records,
        publisher,
        published_at,
        table_version,
        lang=lang,
        information_status=information_status,
        exchange_protocol=exchange_protocol,
    )
    return orjson.dumps(document)
