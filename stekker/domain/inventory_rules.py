"""What makes inventory data valid: countries, time zones, opening hours, public EVSE ids.

Pure checks, no I/O; each returns a message that says what is wrong (or None when fine), so
the API, the importer and the CLI report the same words.
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any

# ISO 3166-1 alpha-3, the country codes OCPI Locations use.
ISO3166_ALPHA3 = frozenset(
    """
    ABW AFG AGO AIA ALA ALB AND ARE ARG ARM ASM ATA ATF ATG AUS AUT AZE BDI BEL BEN BES BFA BGD
    BGR BHR BHS BIH BLM BLR BLZ BMU BOL BRA BRB BRN BTN BVT BWA CAF CAN CCK CHE CHL CHN CIV CMR
    COD COG COK COL COM CPV CRI CUB CUW CXR CYM CYP CZE DEU DJI DMA DNK DOM DZA ECU EGY ERI ESH
    ESP EST ETH FIN FJI FLK FRA FRO FSM GAB GBR GEO GGY GHA GIB GIN GLP GMB GNB GNQ GRC GRD GRL
    GTM GUF GUM GUY HKG HMD HND HRV HTI HUN IDN IMN IND IOT IRL IRN IRQ ISL ISR ITA JAM JEY JOR
    JPN KAZ KEN KGZ KHM KIR KNA KOR KWT LAO LBN LBR LBY LCA LIE LKA LSO LTU LUX LVA MAC MAF MAR
    MCO MDA MDG MDV MEX MHL MKD MLI MLT MMR MNE MNG MNP MOZ MRT MSR MTQ MUS MWI MYS MYT NAM NCL
    NER NFK NGA NIC NIU NLD NOR NPL NRU NZL OMN PAK PAN PCN PER PHL PLW PNG POL PRI PRK PRT PRY
    PSE PYF QAT REU ROU RUS RWA SAU SDN SEN SGP SGS SHN SJM SLB SLE SLV SMR SOM SPM SRB SSD STP
    SUR SVK SVN SWE SWZ SXM SYC SYR TCA TCD TGO THA TJK TKL TKM TLS TON TTO TUN TUR TUV TWN TZA
    UGA UKR UMI URY USA UZB VAT VCT VEN VGB VIR VNM VUT WLF WSM YEM ZAF ZMB ZWE
    """.split()
)

# eMI3 / IDACS EVSE id: country (2) * operator (3) * "E" + outlet id; the separators are
# optional in the standard. What a driver reads on the sticker, e.g. NL*STK*E0001*1.
EVSE_ID = re.compile(r"^[A-Z]{2}\*?[A-Z0-9]{3}\*?E[A-Z0-9][A-Z0-9*]{0,30}$")
# An OCPP identity: the last segment of the station's WebSocket URL.
STATION_ID = r"^[A-Za-z0-9._:*\-]{1,48}$"
# What a station sends as idTag / idToken (1.6 allows 20 characters, 2.0.1 36).
TOKEN_UID = r"^[\x21-\x7e]{1,36}$"
_HHMM = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")


def country_problem(code: str) -> str | None:
    if code not in ISO3166_ALPHA3:
        return f"country must be an ISO 3166-1 alpha-3 code such as NLD, BEL or DEU, not {code!r}"
    return None


@cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def time_zone_problem(name: str) -> str | None:
    if name not in _time_zones():
        return f"time_zone must be an IANA time zone such as Europe/Amsterdam, not {name!r}"
    return None


def coordinate_problem(name: str, value: Decimal | str | float, limit: int) -> str | None:
    """`latitude` within ±90, `longitude` within ±180, at most 6 decimals (WGS84)."""
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return f"{name} must be a decimal number of degrees, not {value!r}"
    if not number.is_finite() or not -limit <= number <= limit:
        return f"{name} must be between -{limit} and {limit} degrees, not {value}"
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -6:
        return f"{name} has more than 6 decimals (about 0.1 m): {value}"
    return None


def normalise_evse_id(value: str) -> str:
    """eMI3 ids are case-insensitive; we store them upper-case."""
    return value.strip().upper()


def evse_id_problem(value: str) -> str | None:
    if len(value) > 48 or not EVSE_ID.match(value):
        return (
            f"evse_id must be an eMI3 EVSE id: country*operator*E + outlet id, e.g. NL*STK*E0001*1, "
            f"not {value!r}"
        )
    return None


def _period_problem(where: str, period: Any) -> str | None:
    if not isinstance(period, dict) or set(period) != {"period_begin", "period_end"}:
        return f"{where} must be an object with exactly period_begin and period_end"
    try:
        begin = datetime.fromisoformat(str(period["period_begin"]).replace("Z", "+00:00"))
        end = datetime.fromisoformat(str(period["period_end"]).replace("Z", "+00:00"))
    except ValueError:
        return f"{where}: period_begin and period_end must be ISO 8601 date-times"
    if begin.tzinfo is None or end.tzinfo is None:
        return f"{where}: period_begin and period_end need a UTC offset (e.g. Z)"
    if end <= begin:
        return f"{where}: period_end must be after period_begin"
    return None


def opening_times_problem(hours: Any) -> str | None:
    """Checks the OCPI 2.2.1 Hours object: `twentyfourseven` (bool), `regular_hours`
    (weekday 1 = Monday .. 7, period_begin/period_end "HH:MM", only when not 24/7),
    `exceptional_openings` / `exceptional_closings` (ISO 8601 date-time periods)."""
    if not isinstance(hours, dict):
        return "opening_times must be an OCPI Hours object"
    allowed = {"twentyfourseven", "regular_hours", "exceptional_openings", "exceptional_closings"}
    unknown = sorted(set(hours) - allowed)
    if unknown:
        return f"opening_times has unknown fields {unknown} (OCPI Hours: {sorted(allowed)})"
    always = hours.get("twentyfourseven")
    if not isinstance(always, bool):
        return "opening_times.twentyfourseven is required: true or false"
    regular = hours.get("regular_hours") or []
    if not isinstance(regular, list):
        return "opening_times.regular_hours must be a list"
    if always and regular:
        return "opening_times: regular_hours only when twentyfourseven is false"
    if not always and not regular:
        return "opening_times: give regular_hours when twentyfourseven is false"
    for i, entry in enumerate(regular):
        where = f"opening_times.regular_hours[{i}]"
        if not isinstance(entry, dict) or set(entry) != {"weekday", "period_begin", "period_end"}:
            return f"{where} must have exactly weekday, period_begin and period_end"
        day = entry["weekday"]
        if isinstance(day, bool) or not isinstance(day, int) or not 1 <= day <= 7:
            return f"{where}.weekday must be 1 (Monday) to 7 (Sunday)"
        begin, end = entry["period_begin"], entry["period_end"]
        if not (isinstance(begin, str) and _HHMM.match(begin)):
            return f"{where}.period_begin must be HH:MM"
        if not (isinstance(end, str) and (_HHMM.match(end) or end == "24:00")):
            return f"{where}.period_end must be HH:MM"
        if end != "24:00" and end <= begin:  # OCPI: a period ending after midnight is split per day
            return f"{where}: period_end must be after period_begin"
    for key in ("exceptional_openings", "exceptional_closings"):
        periods = hours.get(key) or []
        if not isinstance(periods, list):
            return f"opening_times.{key} must be a list"
        for i, period in enumerate(periods):
            problem = _period_problem(f"opening_times.{key}[{i}]", period)
            if problem is not None:
                return problem
    return None


# OCPI 2.2.1 ConnectorType, ConnectorFormat and PowerType: what open data and eMSPs expect.
CONNECTOR_STANDARDS = frozenset(
    """
    CHADEMO CHAOJI DOMESTIC_A DOMESTIC_B DOMESTIC_C DOMESTIC_D DOMESTIC_E DOMESTIC_F DOMESTIC_G
    DOMESTIC_H DOMESTIC_I DOMESTIC_J DOMESTIC_K DOMESTIC_L DOMESTIC_M DOMESTIC_N DOMESTIC_O
    GBT_AC GBT_DC IEC_60309_2_single_16 IEC_60309_2_three_16 IEC_60309_2_three_32
    IEC_60309_2_three_64 IEC_62196_T1 IEC_62196_T1_COMBO IEC_62196_T2 IEC_62196_T2_COMBO
    IEC_62196_T3A IEC_62196_T3C NEMA_5_20 NEMA_6_30 NEMA_6_50 NEMA_10_30 NEMA_10_50 NEMA_14_30
    NEMA_14_50 PANTOGRAPH_BOTTOM_UP PANTOGRAPH_TOP_DOWN TESLA_R TESLA_S
    """.split()
)
CONNECTOR_FORMATS = frozenset({"SOCKET", "CABLE"})
POWER_TYPES = frozenset({"AC_1_PHASE", "AC_2_PHASE", "AC_2_PHASE_SPLIT", "AC_3_PHASE", "DC"})


def connector_problem(field: str, value: Any) -> str | None:
    """A message when a connector field has a value outside OCPI's vocabulary or sane range."""
    choices = {"standard": CONNECTOR_STANDARDS, "format": CONNECTOR_FORMATS, "power_type": POWER_TYPES}
    if field in choices:
        if value not in choices[field]:
            return f"{field} must be one of {', '.join(sorted(choices[field]))}; not {value!r}"
        return None
    limits = {"max_voltage": 2_000, "max_amperage": 2_000, "max_electric_power": 2_000_000}
    if field in limits and value is not None:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limits[field]:
            return f"{field} must be a whole number from 1 to {limits[field]}, not {value!r}"
    return None
